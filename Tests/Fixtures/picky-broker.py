#!/usr/bin/env python3
"""A tiny TLS MQTT listener on 127.0.0.1 that behaves like brokers we did not configure:

  * a CONNECT at MQTT 5 (protocol level 5) gets no CONNACK: the connection is closed at once,
    as RabbitMQ before 3.13 does;
  * at MQTT 3.1.1 it answers CONNACK (accepted), PINGREQ and SUBSCRIBE, and closes the
    connection on the first PUBLISH, as RabbitMQ does when its ACL forbids the publish;
  * with `refuse-subscribe`, every SUBACK refuses (0x80), as brokers whose ACL covers
    subscriptions do (mosquitto's acl_file never refuses one).

    picky-broker.py PORT_FILE CERT KEY CA [refuse-subscribe]

Writes the port it listens on to PORT_FILE; runs until killed.
"""
import socket
import ssl
import sys
import threading

port_file, cert, key, ca = sys.argv[1:5]
refuse_subscribe = len(sys.argv) > 5 and sys.argv[5] == "refuse-subscribe"
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
context.load_verify_locations(ca)
context.verify_mode = ssl.CERT_OPTIONAL

listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(16)
with open(port_file + ".tmp", "w") as f:
    f.write(str(listener.getsockname()[1]))
import os
os.rename(port_file + ".tmp", port_file)


def read_exactly(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def read_packet(conn):
    header = read_exactly(conn, 1)[0]
    length, shift = 0, 0
    while True:
        byte = read_exactly(conn, 1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if byte & 0x80 == 0:
            break
    return header, read_exactly(conn, length)


def serve(raw):
    try:
        conn = context.wrap_socket(raw, server_side=True)
    except Exception:
        raw.close()
        return
    try:
        header, body = read_packet(conn)
        if header >> 4 != 1:
            return
        name_length = int.from_bytes(body[0:2], "big")
        level = body[2 + name_length]
        if level == 5:
            return  # closed right after CONNECT at MQTT 5
        conn.sendall(bytes([0x20, 0x02, 0x00, 0x00]))
        while True:
            header, body = read_packet(conn)
            kind = header >> 4
            if kind == 3:
                return  # closed right after PUBLISH
            if kind == 12:
                conn.sendall(bytes([0xD0, 0x00]))
            elif kind == 8:
                mid = body[0:2]
                conn.sendall(bytes([0x90, 0x03]) + mid + bytes([0x80 if refuse_subscribe else 0x00]))
            elif kind == 14:
                return
    except Exception:
        pass
    finally:
        try:
            conn.close()
        except Exception:
            pass


while True:
    raw, _ = listener.accept()
    threading.Thread(target=serve, args=(raw,), daemon=True).start()
