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
#include <openssl/ec.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <pthread.h>

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
// Acknowledge received segments at once (leave Linux's delayed-ACK "pingpong" mode). The kernel
// re-enters that mode by itself, so a caller sets it again after each exchange. 0 or -1 (errno).
static inline int CMosquitto_set_quickack(int fd) {
#ifdef TCP_QUICKACK
    int on = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
#else
    (void)fd;
    return 0;
#endif
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

// Read side: libmosquitto's loop_read reads packets until a read fails with EAGAIN, so every
// readable event used to end in a read() that returned nothing. With OpenSSL's read-ahead a
// read() asks for a whole buffer; one that brings less has emptied the socket. This filter in
// front of the socket BIO then answers "retry" to the next read without the system call, until
// the reactor sees the socket readable again (CMosquitto_read_filter_rearm). A record only
// partly arrived waits, as before, for the next readable event (epoll is level-triggered).
typedef struct { int drained; } CMosquitto_read_filter_state;

static inline int CMosquitto_read_filter_read(BIO *b, char *out, int len) {
    CMosquitto_read_filter_state *st = (CMosquitto_read_filter_state *)BIO_get_data(b);
    BIO *next = BIO_next(b);
    BIO_clear_retry_flags(b);
    if (next == NULL || out == NULL || st == NULL) return 0;
    if (st->drained) { BIO_set_retry_read(b); return -1; }
    int n = BIO_read(next, out, len);
    if (n <= 0) {
        BIO_copy_next_retry(b);
        if (BIO_should_retry(next)) st->drained = 1;
        return n;
    }
    if (n < len) st->drained = 1;
    return n;
}
static inline int CMosquitto_read_filter_write(BIO *b, const char *in, int len) {
    BIO *next = BIO_next(b);
    if (next == NULL) return 0;
    int n = BIO_write(next, in, len);
    BIO_clear_retry_flags(b);
    BIO_copy_next_retry(b);
    return n;
}
static inline long CMosquitto_read_filter_ctrl(BIO *b, int cmd, long num, void *ptr) {
    BIO *next = BIO_next(b);
    return next == NULL ? 0 : BIO_ctrl(next, cmd, num, ptr);
}
static inline int CMosquitto_read_filter_create(BIO *b) {
    CMosquitto_read_filter_state *st = (CMosquitto_read_filter_state *)OPENSSL_zalloc(sizeof *st);
    if (st == NULL) return 0;
    BIO_set_data(b, st);
    BIO_set_init(b, 1);
    return 1;
}
static inline int CMosquitto_read_filter_destroy(BIO *b) {
    OPENSSL_free(BIO_get_data(b));
    BIO_set_data(b, NULL);
    BIO_set_init(b, 0);
    return 1;
}
// The filter's BIO_METHOD, made once per process (function-local statics: a header imported
// by Swift gets no storage for file-scope ones). Its BIO type in *type.
static inline BIO_METHOD *CMosquitto_read_filter_method(int *type) {
    static BIO_METHOD *_Atomic method;
    static int method_type;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    BIO_METHOD *m = method;
    if (m == NULL) {
        pthread_mutex_lock(&lock);
        m = method;
        if (m == NULL) {
            int t = BIO_get_new_index() | BIO_TYPE_FILTER;
            m = BIO_meth_new(t, "sensorfleet read filter");
            if (m != NULL) {
                BIO_meth_set_read(m, CMosquitto_read_filter_read);
                BIO_meth_set_write(m, CMosquitto_read_filter_write);
                BIO_meth_set_ctrl(m, CMosquitto_read_filter_ctrl);
                BIO_meth_set_create(m, CMosquitto_read_filter_create);
                BIO_meth_set_destroy(m, CMosquitto_read_filter_destroy);
                method_type = t;
                method = m;
            }
        }
        pthread_mutex_unlock(&lock);
    }
    *type = method_type;
    return m;
}
// Puts the filter in front of the SSL's read BIO (after the handshake). 1 installed, 0 nothing
// to do, -1 failure.
static inline int CMosquitto_install_read_filter(void *sslp) {
    SSL *ssl = (SSL *)sslp;
    if (ssl == NULL) return 0;
    int type = 0;
    BIO_METHOD *method = CMosquitto_read_filter_method(&type);
    if (method == NULL) return -1;
    BIO *rbio = SSL_get_rbio(ssl);
    if (rbio == NULL || BIO_method_type(rbio) == type) return 0;
    BIO *filter = BIO_new(method);
    if (filter == NULL) return -1;
    BIO_up_ref(rbio);
    BIO_push(filter, rbio);
    SSL_set0_rbio(ssl, filter);
    return 1;
}
// The socket was reported readable: the next read goes to it again.
static inline void CMosquitto_read_filter_rearm(void *sslp) {
    if (sslp == NULL) return;
    int type = 0;
    if (CMosquitto_read_filter_method(&type) == NULL) return;
    BIO *rbio = SSL_get_rbio((SSL *)sslp);
    if (rbio == NULL || BIO_method_type(rbio) != type) return;
    CMosquitto_read_filter_state *st = (CMosquitto_read_filter_state *)BIO_get_data(rbio);
    if (st != NULL) st->drained = 0;
}

// Verifies a certificate file as a TLS server verifies its client (purpose "ssl_client", what
// mosquitto's `require_certificate` does): the first certificate of cert_path is the leaf, the
// others there are untrusted intermediates (sent in the handshake by SSL_CTX_use_certificate_chain_file),
// ca_path the trusted CAs (X509_STORE_load_file, as the broker's `cafile`). at_time: seconds since
// 1970 to check validity at. Returns X509_V_OK (0), an X509_V_ERR_* code (>0; depth, the failing
// certificate's subject and issuer in the out parameters), -1 when cert_path holds no certificate,
// -2 when ca_path cannot be loaded, -3 out of memory.
static inline int CMosquitto_verify_client_chain(const char *cert_path, const char *ca_path, long long at_time,
                                                 int *depth, char *subject, size_t subject_len,
                                                 char *issuer, size_t issuer_len) {
    int result = -3;
    X509 *leaf = NULL;
    STACK_OF(X509) *rest = NULL;
    X509_STORE *store = NULL;
    X509_STORE_CTX *ctx = NULL;
    *depth = -1;
    if (subject_len > 0) subject[0] = 0;
    if (issuer_len > 0) issuer[0] = 0;
    BIO *bio = BIO_new_file(cert_path, "r");
    if (bio == NULL) { ERR_clear_error(); return -1; }
    leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (leaf == NULL) { BIO_free(bio); ERR_clear_error(); return -1; }
    rest = sk_X509_new_null();
    if (rest == NULL) goto done;
    for (;;) {
        X509 *next = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (next == NULL) break;
        if (!sk_X509_push(rest, next)) { X509_free(next); goto done; }
    }
    ERR_clear_error();
    store = X509_STORE_new();
    if (store == NULL) goto done;
    if (X509_STORE_load_file(store, ca_path) != 1) { result = -2; ERR_clear_error(); goto done; }
    ctx = X509_STORE_CTX_new();
    if (ctx == NULL || X509_STORE_CTX_init(ctx, store, leaf, rest) != 1) goto done;
    X509_STORE_CTX_set_default(ctx, "ssl_client");
    X509_STORE_CTX_set_time(ctx, 0, (time_t)at_time);
    if (X509_verify_cert(ctx) == 1) {
        result = X509_V_OK;
    } else {
        result = X509_STORE_CTX_get_error(ctx);
        if (result == X509_V_OK) result = X509_V_ERR_UNSPECIFIED;
        *depth = X509_STORE_CTX_get_error_depth(ctx);
        X509 *bad = X509_STORE_CTX_get_current_cert(ctx);
        if (bad != NULL) {
            if (subject_len > 0) X509_NAME_oneline(X509_get_subject_name(bad), subject, (int)subject_len);
            if (issuer_len > 0) X509_NAME_oneline(X509_get_issuer_name(bad), issuer, (int)issuer_len);
        }
    }
    ERR_clear_error();
done:
    if (ctx != NULL) X509_STORE_CTX_free(ctx);
    if (store != NULL) X509_STORE_free(store);
    if (rest != NULL) sk_X509_pop_free(rest, X509_free);
    if (leaf != NULL) X509_free(leaf);
    BIO_free(bio);
    return result;
}
static inline const char *CMosquitto_verify_error_string(int code) {
    return X509_verify_cert_error_string(code);
}
// Never ask for a passphrase on the terminal (OpenSSL's default for an encrypted key): an
// encrypted key fails to load, and we say so.
static inline int CMosquitto_no_passphrase(char *buf, int size, int rwflag, void *userdata) {
    (void)buf; (void)size; (void)rwflag; (void)userdata;
    return 0;
}
static inline void CMosquitto_SSL_CTX_refuse_passphrase(SSL_CTX *ctx) {
    SSL_CTX_set_default_passwd_cb(ctx, CMosquitto_no_passphrase);
}


// One shared SSL_CTX per trust store and TLS settings, the device's identity set on each
// connection (TLSContext.swift, TLSSharedContext.swift).

// OpenSSL 3.0's generic key decoder (PEM_read_bio_PrivateKey: every decoder is tried) costs about
// 0.5 ms of CPU per P-256 key here, the EC decoder alone about 0.05 ms: 10,000 devices start
// 4.5 CPU-s sooner. An unencrypted EC key (PKCS#8 "PRIVATE KEY", or "EC PRIVATE KEY", named
// curve) is read that way; NULL for anything else, or anything it cannot read, which the caller
// then reads the generic way (same errors as before). The EC_KEY calls are deprecated in 3.0,
// not removed; a legacy key is exported to the provider once, on first use.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static inline EVP_PKEY *CMosquitto_read_ec_key(const char *key_path) {
    BIO *in = BIO_new_file(key_path, "r");
    if (in == NULL) return NULL;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len = 0;
    int read = PEM_read_bio(in, &name, &header, &data, &len);
    BIO_free(in);
    if (read != 1) { ERR_clear_error(); return NULL; }
    EC_KEY *ec = NULL;
    if (header != NULL && header[0] == 0 && strcmp(name, "PRIVATE KEY") == 0) {
        const unsigned char *p = data;
        PKCS8_PRIV_KEY_INFO *info = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, len);
        const ASN1_OBJECT *algorithm = NULL;
        const unsigned char *inner = NULL;
        int inner_len = 0;
        const X509_ALGOR *alg = NULL;
        if (info != NULL && PKCS8_pkey_get0(&algorithm, &inner, &inner_len, &alg, info) == 1
            && OBJ_obj2nid(algorithm) == NID_X9_62_id_ecPublicKey) {
            int ptype = 0;
            const void *pval = NULL;
            X509_ALGOR_get0(NULL, &ptype, &pval, alg);
            if (ptype == V_ASN1_OBJECT) {
                ec = EC_KEY_new_by_curve_name(OBJ_obj2nid((const ASN1_OBJECT *)pval));
                if (ec != NULL && d2i_ECPrivateKey(&ec, &inner, inner_len) == NULL) { EC_KEY_free(ec); ec = NULL; }
            }
        }
        PKCS8_PRIV_KEY_INFO_free(info);
    } else if (header != NULL && header[0] == 0 && strcmp(name, "EC PRIVATE KEY") == 0) {
        const unsigned char *p = data;
        ec = d2i_ECPrivateKey(NULL, &p, len);
        // Named curves only (explicit parameters: the generic way decides).
        if (ec != NULL && (EC_KEY_get0_group(ec) == NULL || EC_GROUP_get_curve_name(EC_KEY_get0_group(ec)) == NID_undef)) {
            EC_KEY_free(ec);
            ec = NULL;
        }
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    EVP_PKEY *key = NULL;
    if (ec != NULL && EC_KEY_get0_private_key(ec) != NULL && EC_KEY_get0_public_key(ec) != NULL) {
        key = EVP_PKEY_new();
        if (key != NULL && EVP_PKEY_assign_EC_KEY(key, ec) != 1) { EVP_PKEY_free(key); key = NULL; }
        if (key != NULL) ec = NULL;
    }
    EC_KEY_free(ec);
    ERR_clear_error();
    return key;
}
#pragma GCC diagnostic pop

// Reads a device identity once: the leaf and any intermediates from cert_path (PEM, leaf first:
// what SSL_CTX_use_certificate_chain_file reads) and the private key from key_path, never asking
// for a passphrase. Returns 0 (*chain is NULL when the file holds the leaf only), 1 when the
// certificate file cannot be read, 2 the key file; the OpenSSL error queue says why.
static inline int CMosquitto_read_identity(const char *cert_path, const char *key_path,
                                           X509 **leaf, STACK_OF(X509) **chain, EVP_PKEY **key) {
    *leaf = NULL; *chain = NULL; *key = NULL;
    BIO *in = BIO_new_file(cert_path, "r");
    if (in == NULL) return 1;
    X509 *x = PEM_read_bio_X509_AUX(in, NULL, CMosquitto_no_passphrase, NULL);
    if (x == NULL) { BIO_free(in); return 1; }
    STACK_OF(X509) *rest = sk_X509_new_null();
    if (rest == NULL) { X509_free(x); BIO_free(in); return 1; }
    for (;;) {
        X509 *ca = PEM_read_bio_X509(in, NULL, CMosquitto_no_passphrase, NULL);
        if (ca == NULL) break;
        if (!sk_X509_push(rest, ca)) { X509_free(ca); break; }
    }
    BIO_free(in);
    // The loop ends at the end of the file (no start line left) or on a damaged certificate.
    unsigned long err = ERR_peek_last_error();
    if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
    } else {
        sk_X509_pop_free(rest, X509_free);
        X509_free(x);
        return 1;
    }
    EVP_PKEY *k = CMosquitto_read_ec_key(key_path);
    if (k == NULL) {
        in = BIO_new_file(key_path, "r");
        k = in == NULL ? NULL : PEM_read_bio_PrivateKey(in, NULL, CMosquitto_no_passphrase, NULL);
        if (in != NULL) BIO_free(in);
    }
    if (k == NULL) { sk_X509_pop_free(rest, X509_free); X509_free(x); return 2; }
    if (sk_X509_num(rest) == 0) { sk_X509_free(rest); rest = NULL; }
    *leaf = x; *chain = rest; *key = k;
    return 0;
}
static inline void CMosquitto_free_chain(STACK_OF(X509) *chain) {
    if (chain != NULL) sk_X509_pop_free(chain, X509_free);
}
// Checks once, at load time, what SSL_use_cert_and_key checks on each connection (the key type
// is usable, the certificates pass the context's security level, key and certificate match), on
// a throw-away SSL of the shared context. 1 usable, 0 not (the error queue says why).
static inline int CMosquitto_check_identity(SSL_CTX *ctx, X509 *leaf, EVP_PKEY *key, STACK_OF(X509) *chain) {
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) return 0;
    int ok = SSL_use_cert_and_key(ssl, leaf, key, chain, 1);
    SSL_free(ssl);
    return ok == 1;
}
// Client-side session cache: hand each new session to the new-session callback and keep none in
// the context (each device keeps its own; a shared store would mix identities).
static inline void CMosquitto_SSL_CTX_client_sessions(SSL_CTX *ctx) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
}
// Says in the OpenSSL error queue (libmosquitto logs it with the failed handshake) that a
// connection had no device identity attached: a bug, refused rather than sent without a certificate.
static inline void CMosquitto_raise_no_identity(void) {
    ERR_raise_data(ERR_LIB_USER, ERR_R_INTERNAL_ERROR, "sensorfleet: no device identity attached to this TLS connection");
}
static inline int CMosquitto_SSL_ex_index(CRYPTO_EX_free *release) {
    return SSL_get_ex_new_index(0, NULL, NULL, NULL, release);
}

#endif
