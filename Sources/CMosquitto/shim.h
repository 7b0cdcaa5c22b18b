#ifndef SENSORFLEET_CMOSQUITTO_SHIM_H
#define SENSORFLEET_CMOSQUITTO_SHIM_H

// libmosquitto (libmosquitto-dev) and the parts of OpenSSL (libssl-dev) we call to build our own
// SSL_CTX per identity (see ../shared/LIBMOSQUITTO.md). Macros are wrapped in static inline
// functions, prefixed CMosquitto_, because Swift cannot call C macros.
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <netdb.h>
#include <errno.h>

static inline int CMosquitto_SSL_CTX_set_min_tls12(SSL_CTX *ctx) {
    return (int)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
}
static inline int CMosquitto_SSL_CTX_set_min_tls13(SSL_CTX *ctx) {
    return (int)SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
}
static inline void CMosquitto_SSL_CTX_release_buffers(SSL_CTX *ctx) {
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}
static inline void CMosquitto_SSL_CTX_set_read_ahead(SSL_CTX *ctx, int on) {
    SSL_CTX_set_read_ahead(ctx, on);
}
static inline int CMosquitto_SSL_want_write(const SSL *ssl) {
    return SSL_want_write(ssl);
}
static inline int CMosquitto_SSL_want_read(const SSL *ssl) {
    return SSL_want_read(ssl);
}
static inline unsigned long CMosquitto_ERR_pop_error_string(char *buf, size_t len) {
    unsigned long code = ERR_get_error();
    if (code != 0) { ERR_error_string_n(code, buf, len); }
    return code;
}
static inline int CMosquitto_errno(void) { return errno; }
static inline int CMosquitto_SSL_set_sni(const SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name((SSL *)ssl, name);
}
static inline int CMosquitto_SSL_is_init_finished(void *ssl) {
    return ssl == NULL ? 1 : SSL_is_init_finished((const SSL *)ssl);
}
static inline int CMosquitto_SSL_want_write_ptr(void *ssl) {
    return ssl == NULL ? 0 : SSL_want_write((const SSL *)ssl);
}

// Write batching: a buffering BIO in front of the socket BIO (installed after CONNACK), so the
// MQTT packets written during one reactor turn leave in one write() when the turn ends.
// Returns 1 when installed, 0 when there was nothing to do, -1 on failure.
static inline int CMosquitto_install_write_buffer(void *sslp) {
    SSL *ssl = (SSL *)sslp;
    if (ssl == NULL) return 0;
    BIO *wbio = SSL_get_wbio(ssl);
    if (wbio == NULL || BIO_method_type(wbio) == BIO_TYPE_BUFFER) return 0;
    BIO *buffer = BIO_new(BIO_f_buffer());
    if (buffer == NULL) return -1;
    BIO_set_write_buffer_size(buffer, 16384);
    // The socket BIO is shared with the read side: the chain keeps its own reference, and
    // SSL_set0_wbio drops the one the SSL held for writing.
    BIO_up_ref(wbio);
    BIO_push(buffer, wbio);
    SSL_set0_wbio(ssl, buffer);
    return 1;
}
// Bytes waiting in the write buffer (0 when there is none).
static inline size_t CMosquitto_write_buffer_pending(void *sslp) {
    if (sslp == NULL) return 0;
    BIO *wbio = SSL_get_wbio((SSL *)sslp);
    if (wbio == NULL || BIO_method_type(wbio) != BIO_TYPE_BUFFER) return 0;
    return BIO_wpending(wbio);
}
// Writes the buffer out: 1 done (or nothing to do), 0 the socket is full (try on EPOLLOUT), -1 error.
static inline int CMosquitto_flush_write_buffer(void *sslp) {
    if (CMosquitto_write_buffer_pending(sslp) == 0) return 1;
    BIO *wbio = SSL_get_wbio((SSL *)sslp);
    if (BIO_flush(wbio) > 0) return 1;
    return BIO_should_retry(wbio) ? 0 : -1;
}

#endif
