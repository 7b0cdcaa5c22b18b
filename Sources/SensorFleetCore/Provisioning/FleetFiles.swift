/// The text files provisioning writes: broker configuration, ACL, and YAML templates.
enum FleetFiles {
    /// `broker/mosquitto.conf` for a local mosquitto 2.0 with mutual TLS.
    ///
    /// Started as root, mosquitto switches to the `mosquitto` user before it reads the key and
    /// the ACL, and the server key is mode 0600: run it as the folder's owner, or add `user root`
    /// to a copy of this file for a local test.
    static func mosquittoConf(directory: String, port: Int, withCRL: Bool) -> String {
        var lines = [
            "# Written by sensorfleet provision; rewritten on every run (it holds no secrets).",
            "# Devices authenticate with their certificates; the certificate's CN is the username.",
            "# mosquitto started as root drops to user 'mosquitto', which cannot read the 0600",
            "# server key: run it as the owner of this folder, or add 'user root' to a copy.",
            "per_listener_settings false",
            "# Small packets at once: with mosquitto's default (false) its second write after the",
            "# TLS handshake waits for the client's delayed ACK, ~40 ms on every connect.",
            "set_tcp_nodelay true",
            "listener \(port) 127.0.0.1",
            "cafile \(directory)/ca.pem",
            "certfile \(directory)/broker/server.pem",
            "keyfile \(directory)/broker/server.key",
            "require_certificate true",
            "use_identity_as_username true",
            "tls_version tlsv1.2",
            "allow_anonymous false",
            "acl_file \(directory)/broker/acl",
        ]
        if withCRL { lines.append("crlfile \(directory)/broker/crl.pem") }
        lines += [
            "persistence false",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_dest stdout",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    static let acl = """
        # Written by sensorfleet provision. %u is the username, which is the client
        # certificate's CN (use_identity_as_username), that is, the device id: each device may
        # publish only under devices/<its id>/ (telemetry, status, replies) and read only its own
        # commands topic, devices/<its id>/commands.
        pattern write devices/%u/#
        pattern read devices/%u/commands
        # With `profile: azure-iot-hub`, commands come as IoT Hub's cloud-to-device messages.
        pattern read devices/%u/messages/devicebound/#
        # The shadow (`shadow:` in fleet.yaml): the generic preset's requests to the device, and
        # the AWS IoT preset's topics, each device its own.
        pattern read devices/%u/shadow/update
        pattern read devices/%u/shadow/get
        pattern readwrite $aws/things/%u/shadow/#
        # Devices with `payload: sparkplug_b` are Sparkplug B edge nodes named by their id
        # (edge_node_id "{id}", the default), in any group.
        pattern write spBv1.0/+/NBIRTH/%u
        pattern write spBv1.0/+/NDATA/%u
        pattern write spBv1.0/+/NDEATH/%u
        pattern read spBv1.0/+/NCMD/%u

        # The observer (broker/observer/): reads every device's topics (the demo's subscriber,
        # the load-test verifier) and may send commands.
        user sensorfleet-observer
        topic read devices/#
        topic write devices/+/commands
        topic write devices/+/messages/devicebound/#
        topic write devices/+/shadow/update
        topic write devices/+/shadow/get
        topic readwrite $aws/things/#
        topic read $SYS/#
        topic read spBv1.0/#
        topic write spBv1.0/+/NCMD/+

        """

    static func fleetYAML(port: Int) -> String {
        """
        # Written by sensorfleet provision when missing; edit freely.
        broker:
          host: localhost
          port: \(port)
          ca: ca.pem
        seed: 1

        """
    }

    static func deviceYAML(id: String) -> String {
        """
        # Written by sensorfleet provision; edit freely.
        id: \(id)
        interval: 5
        qos: 1
        sensors:
          - name: temperature
            unit: "°C"
            type: random_walk
            start: 21.0
            step: 0.2
            min: -10
            max: 45
            precision: 2
          - name: humidity
            unit: "%"
            type: gaussian
            mean: 45
            stddev: 5
            min: 0
            max: 100
            precision: 1

        """
    }
}
