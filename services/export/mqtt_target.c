/*
 * mqtt_target.c — the MQTT target: libmosquitto, MQTT 3.1.1, one client per
 * process, driven from the export loop without a network thread.
 *
 * Delivery: every row of a batch is published (QoS 1 by default) and the
 * batch is confirmed to the engine only when each message's PUBACK came
 * back (on_publish with its message id). Until then the ring batch stays
 * unacknowledged, so a crash re-delivers it to the group: at least once.
 * Up to MQTT_WINDOW batches are in flight at once, so the broker always has
 * the next batch while the last PUBACKs of the previous one come back
 * (with one batch at a time, broker and exporter took turns waiting).
 *
 * Sessions: the client id is fixed (<client_id>-<member>) and the session
 * persistent (clean_session false). When the connection drops mid-batch,
 * the same client reconnects and libmosquitto resends the messages still
 * in flight (DUP set); their PUBACKs complete the batch and nothing is
 * published twice by us. Only when a batch is abandoned (it went to the
 * spool or back to the group) or its PUBACKs stop coming for
 * ack_timeout_ms is the client replaced, so that libmosquitto's queue
 * holds nothing stale; unconfirmed rows of a batch still in hand are then
 * published again.
 *
 * Per-message bookkeeping: message ids are 16-bit; mid_slot/mid_row map a
 * message id in flight to its batch and row, so a PUBACK is O(1) here.
 */
#include "config.h"
#include "log.h"
#include "mqtt_internal.h"

#include <errno.h>
#include <mosquitto.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define MQTT_CONNECT_TIMEOUT_MS 5000
#define MID_COUNT 65536
#define MQTT_WINDOW 3 /* batches in flight */
#define MQTT_MAX_BATCH 20000 /* export.mqtt.batch_records at most (the loader checks) */
_Static_assert(MQTT_WINDOW * MQTT_MAX_BATCH < MID_COUNT - 1,
               "every message in flight has its own 16-bit message id");
_Static_assert(MQTT_WINDOW <= EXPORT_MAX_WINDOW, "the engine holds the batches in flight");

enum row_state { ROW_NEW = 0, ROW_SENT = 1, ROW_ACKED = 2 };

/* One batch in flight. */
typedef struct mqtt_slot {
    const export_batch *b; /* the engine's, valid until collected or abandoned */
    uint64_t id;
    uint8_t *state; /* per row: enum row_state */
    size_t cap;
    size_t unacked; /* rows not confirmed yet */
    size_t unsent;  /* rows in ROW_NEW */
    int64_t since_ms; /* submitted or resumed */
} mqtt_slot;

typedef struct mqtt_target {
    struct mosquitto *mosq;
    char host[256];
    int port;
    int keepalive;
    int qos;
    bool retain;
    char client_id[128];
    char prefix[256];
    char username[256];
    char password[512];
    bool have_password;
    char tls_ca_file[512], tls_ca_path[512], tls_cert_file[512], tls_key_file[512];
    bool tls_insecure;
    uint32_t ack_timeout_ms;
    char describe[1024];
    export_catalog *cat;

    char last_log_error[200];
    bool connected; /* CONNACK accepted and no disconnect since */
    int connack;    /* last CONNACK code, -1 while waiting */
    bool recreate;  /* replace the client before the next connect */
    bool ever_connected;

    /* Batches in flight, oldest at slots[head]. */
    mqtt_slot slots[MQTT_WINDOW];
    int head, n_slots;
    int32_t *mid_row;  /* message id -> row, -1 when not ours */
    uint8_t *mid_slot; /* message id -> index in slots[] */
} mqtt_target;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ callbacks */

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    (void)mosq;
    mqtt_target *t = obj;
    t->connack = rc;
    t->connected = rc == 0;
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
    (void)mosq;
    (void)rc;
    ((mqtt_target *)obj)->connected = false;
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid)
{
    (void)mosq;
    mqtt_target *t = obj;
    if (mid < 0 || mid >= MID_COUNT || t->mid_row[mid] < 0)
        return; /* a message of an abandoned batch, resent by an old session */
    mqtt_slot *sl = &t->slots[t->mid_slot[mid]];
    size_t row = (size_t)t->mid_row[mid];
    t->mid_row[mid] = -1;
    if (sl->b && row < sl->b->n && sl->state[row] == ROW_SENT) {
        sl->state[row] = ROW_ACKED;
        sl->unacked--;
    }
}

/* libmosquitto says why a TLS handshake failed only in its log: keep the
 * last error line for the next reason we report. */
static void on_log(struct mosquitto *mosq, void *obj, int level, const char *str)
{
    (void)mosq;
    mqtt_target *t = obj;
    if (level & MOSQ_LOG_ERR)
        snprintf(t->last_log_error, sizeof t->last_log_error, "%s", str);
    if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
        log_debug("mqtt: libmosquitto: %s", str);
}

/* --------------------------------------------------------------- client */

static void forget_mids(mqtt_target *t)
{
    for (int i = 0; i < MID_COUNT; i++)
        t->mid_row[i] = -1;
}

static void forget_batches(mqtt_target *t)
{
    for (int i = 0; i < MQTT_WINDOW; i++) {
        t->slots[i].b = NULL;
        t->slots[i].id = 0;
    }
    t->head = t->n_slots = 0;
    forget_mids(t);
}

static mqtt_slot *slot_at(mqtt_target *t, int i)
{
    return &t->slots[(t->head + i) % MQTT_WINDOW];
}

static int new_client(mqtt_target *t, char *reason, size_t len)
{
    if (t->mosq)
        mosquitto_destroy(t->mosq);
    t->mosq = mosquitto_new(t->client_id, false, t);
    if (!t->mosq) {
        snprintf(reason, len, "creating the MQTT client: %s", strerror(errno));
        return errno == ENOMEM ? EXPORT_ENOMEM : EXPORT_EREJECT;
    }
    mosquitto_int_option(t->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    /* 0: up to 65535 messages in flight; a whole batch goes out at once. */
    mosquitto_int_option(t->mosq, MOSQ_OPT_SEND_MAXIMUM, 0);
    /* With batches in flight there is always unacknowledged data: Nagle's
     * algorithm would hold every new batch until the broker's (delayed)
     * TCP acknowledgement came. */
    mosquitto_int_option(t->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_callback_set(t->mosq, on_connect);
    mosquitto_disconnect_callback_set(t->mosq, on_disconnect);
    mosquitto_publish_callback_set(t->mosq, on_publish);
    mosquitto_log_callback_set(t->mosq, on_log);
    int rc;
    if (t->username[0] &&
        (rc = mosquitto_username_pw_set(t->mosq, t->username,
                                        t->have_password ? t->password : NULL)) != MOSQ_ERR_SUCCESS) {
        snprintf(reason, len, "setting credentials: %s", mosquitto_strerror(rc));
        return EXPORT_EREJECT;
    }
    if (t->tls_ca_file[0] || t->tls_ca_path[0]) {
        rc = mosquitto_tls_set(t->mosq, t->tls_ca_file[0] ? t->tls_ca_file : NULL,
                               t->tls_ca_path[0] ? t->tls_ca_path : NULL,
                               t->tls_cert_file[0] ? t->tls_cert_file : NULL,
                               t->tls_key_file[0] ? t->tls_key_file : NULL, NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            snprintf(reason, len, "TLS settings (tls_ca_file, tls_cert_file, tls_key_file): %s",
                     mosquitto_strerror(rc));
            return EXPORT_EREJECT;
        }
        if (t->tls_insecure)
            mosquitto_tls_insecure_set(t->mosq, true);
    }
    t->connected = false;
    t->ever_connected = false;
    t->recreate = false;
    /* Rows sent through the old client were never confirmed: send again. */
    for (int k = 0; k < t->n_slots; k++) {
        mqtt_slot *sl = slot_at(t, k);
        for (size_t i = 0; i < sl->b->n; i++) {
            if (sl->state[i] == ROW_SENT) {
                sl->state[i] = ROW_NEW;
                sl->unsent++;
            }
        }
    }
    forget_mids(t);
    return 0;
}

/* One turn of the network: reads PUBACKs and CONNACK, writes what is
 * queued, sends keepalive pings. Returns a MOSQ_ERR_* code.
 *
 * TCP_QUICKACK (re-armed each turn: the kernel drops it on its own): while
 * we wait for PUBACKs we have nothing to send, so our TCP acknowledgements
 * would be delayed (up to 40 ms), and a broker with Nagle's algorithm on
 * (mosquitto's default) holds its last PUBACKs until they come. Measured on
 * loopback: batches of 500 at QoS 1 went from about 7 k to 17 k messages/s. */
static int service(mqtt_target *t, int timeout_ms)
{
    int fd = mosquitto_socket(t->mosq);
    if (fd >= 0) {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
    return mosquitto_loop(t->mosq, timeout_ms, 1);
}

static void describe_error(mqtt_target *t, int rc, char *reason, size_t len, const char *what)
{
    const char *text = rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc);
    /* libmosquitto leaves getaddrinfo's code in errno for a failed lookup. */
    if (rc == MOSQ_ERR_EAI)
        snprintf(reason, len, "%s: cannot resolve host name %s: %s", what, t->host,
                 gai_strerror(errno));
    else if (rc == MOSQ_ERR_TLS && t->last_log_error[0])
        snprintf(reason, len, "%s: %s (%s)", what, text, t->last_log_error);
    else
        snprintf(reason, len, "%s: %s", what, text);
    t->last_log_error[0] = '\0';
}

static int mqtt_connect(void *impl, char *reason, size_t len)
{
    mqtt_target *t = impl;
    int rc;
    if ((!t->mosq || t->recreate) && (rc = new_client(t, reason, len)) != 0)
        return rc;
    t->connack = -1;
    t->connected = false;
    /* Non-blocking TCP connect, completed by the loop below: an unreachable
     * broker costs at most MQTT_CONNECT_TIMEOUT_MS, never the kernel's SYN
     * retry time. A reconnect keeps the client's in-flight messages, which
     * libmosquitto resends once the broker accepted us. */
    if (t->ever_connected)
        rc = mosquitto_reconnect_async(t->mosq);
    else
        rc = mosquitto_connect_async(t->mosq, t->host, t->port, t->keepalive);
    if (rc != MOSQ_ERR_SUCCESS) {
        describe_error(t, rc, reason, len, "connecting");
        return EXPORT_EDOWN;
    }
    t->ever_connected = true;
    int64_t deadline = mono_ms() + MQTT_CONNECT_TIMEOUT_MS;
    while (t->connack < 0) {
        if (mono_ms() >= deadline) {
            snprintf(reason, len, "no CONNACK within %d ms", MQTT_CONNECT_TIMEOUT_MS);
            return EXPORT_EDOWN;
        }
        rc = service(t, 50);
        if (rc != MOSQ_ERR_SUCCESS && t->connack < 0) {
            describe_error(t, rc, reason, len, "connecting");
            return EXPORT_EDOWN;
        }
    }
    if (t->connack != 0) {
        snprintf(reason, len, "broker refused the client: %s", mosquitto_connack_string(t->connack));
        return EXPORT_EREJECT;
    }
    return 0;
}

static int mqtt_poll(void *impl, char *reason, size_t len)
{
    mqtt_target *t = impl;
    if (!t->mosq || !t->connected) {
        snprintf(reason, len, "connection lost");
        return EXPORT_EDOWN;
    }
    int rc = service(t, 0);
    if (rc != MOSQ_ERR_SUCCESS || !t->connected) {
        describe_error(t, rc, reason, len, "connection lost");
        return EXPORT_EDOWN;
    }
    return 0;
}

static void mqtt_disconnect(void *impl)
{
    mqtt_target *t = impl;
    if (t->mosq && t->connected)
        mosquitto_disconnect(t->mosq);
    t->connected = false;
}

static void mqtt_abandon(void *impl)
{
    mqtt_target *t = impl;
    if (t->n_slots)
        t->recreate = true; /* drop libmosquitto's copies of the abandoned messages */
    forget_batches(t);
}

/* ----------------------------------------------------------------- send */

/* Publishes the rows of a batch not sent yet. */
static int publish_new(mqtt_target *t, int slot_index, char *reason, size_t len)
{
    mqtt_slot *sl = &t->slots[slot_index];
    const export_batch *b = sl->b;
    char topic[MQTT_TOPIC_MAX], payload[MQTT_PAYLOAD_MAX];
    for (size_t i = 0; i < b->n && sl->unsent > 0; i++) {
        if (sl->state[i] != ROW_NEW)
            continue;
        const export_row *r = &b->rows[i];
        const export_tag *tag = export_catalog_get(t->cat, r->tag_id);
        int tl = mqtt_format_topic(t->prefix, r, tag, topic, sizeof topic);
        int pl = mqtt_format_payload(r, tag, payload, sizeof payload);
        if (tl < 0 || pl < 0) {
            /* Cannot happen with the lengths the loader allows; never
             * block the ring on it: count the row as delivered. */
            log_warn("mqtt: record %llu does not fit a topic or payload; skipped",
                     (unsigned long long)r->seq);
            sl->state[i] = ROW_ACKED;
            sl->unsent--;
            sl->unacked--;
            continue;
        }
        int mid = 0;
        int rc = mosquitto_publish(t->mosq, &mid, topic, pl, payload, t->qos, t->retain);
        if (rc != MOSQ_ERR_SUCCESS) {
            describe_error(t, rc, reason, len, "publishing");
            return rc == MOSQ_ERR_NOMEM ? EXPORT_ENOMEM : EXPORT_EDOWN;
        }
        sl->unsent--;
        if (t->qos == 0) { /* no acknowledgement exists: written is delivered */
            sl->state[i] = ROW_ACKED;
            sl->unacked--;
            continue;
        }
        sl->state[i] = ROW_SENT;
        t->mid_row[mid & 0xffff] = (int32_t)i;
        t->mid_slot[mid & 0xffff] = (uint8_t)slot_index;
    }
    return 0;
}

static int mqtt_submit(void *impl, const export_batch *b, char *reason, size_t len)
{
    mqtt_target *t = impl;
    int index = -1;
    for (int k = 0; k < t->n_slots && index < 0; k++)
        if (slot_at(t, k)->id == b->id)
            index = (t->head + k) % MQTT_WINDOW; /* a resume after a reconnect */
    if (index < 0) {
        if (t->n_slots >= MQTT_WINDOW) {
            snprintf(reason, len, "more than %d batches in flight", MQTT_WINDOW);
            return EXPORT_EREJECT;
        }
        index = (t->head + t->n_slots) % MQTT_WINDOW;
        mqtt_slot *sl = &t->slots[index];
        if (b->n > sl->cap) {
            uint8_t *p = realloc(sl->state, b->n);
            if (!p)
                return EXPORT_ENOMEM;
            sl->state = p;
            sl->cap = b->n;
        }
        memset(sl->state, ROW_NEW, b->n);
        sl->b = b;
        sl->id = b->id;
        sl->unacked = sl->unsent = b->n;
        t->n_slots++;
    }
    t->slots[index].since_ms = mono_ms();
    if (!t->mosq || !t->connected) {
        snprintf(reason, len, "not connected");
        return EXPORT_EDOWN;
    }
    /* Corked, the batch's small PUBLISH packets leave in a few full
     * segments instead of one each: less work for both ends. */
    int fd = mosquitto_socket(t->mosq), on = 1, off = 0;
    if (fd >= 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
    int rc = publish_new(t, index, reason, len);
    if (fd >= 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
    return rc;
}

/* Confirmed: no row waits for a PUBACK and nothing waits to be written
 * (QoS 0 counts a message delivered once it left). */
static bool oldest_confirmed(mqtt_target *t, int k)
{
    return k < t->n_slots && slot_at(t, k)->unacked == 0 &&
           (t->qos > 0 || !mosquitto_want_write(t->mosq));
}

static int mqtt_collect(void *impl, int timeout_ms, uint64_t *duplicates, int max, char *reason,
                        size_t len)
{
    mqtt_target *t = impl;
    if (!t->mosq || !t->connected) {
        snprintf(reason, len, "not connected");
        return EXPORT_EDOWN;
    }
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        int rc = service(t, 0);
        if (rc != MOSQ_ERR_SUCCESS || !t->connected) {
            describe_error(t, rc, reason, len, "connection lost while waiting for PUBACKs");
            return EXPORT_EDOWN;
        }
        int done = 0;
        while (done < max && oldest_confirmed(t, done))
            done++;
        if (done > 0) {
            for (int k = 0; k < done; k++) {
                duplicates[k] = 0; /* a broker cannot tell */
                slot_at(t, 0)->b = NULL;
                slot_at(t, 0)->id = 0;
                t->head = (t->head + 1) % MQTT_WINDOW;
                t->n_slots--;
            }
            return done;
        }
        if (t->n_slots > 0 && mono_ms() - slot_at(t, 0)->since_ms >= t->ack_timeout_ms) {
            snprintf(reason, len, "%zu of %zu messages without PUBACK after %u ms",
                     slot_at(t, 0)->unacked, slot_at(t, 0)->b->n, t->ack_timeout_ms);
            t->recreate = true; /* publish the rest again through a fresh client */
            return EXPORT_ETIMEOUT;
        }
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        rc = service(t, left < 50 ? (int)left : 50);
        if (rc != MOSQ_ERR_SUCCESS || !t->connected) {
            describe_error(t, rc, reason, len, "connection lost while waiting for PUBACKs");
            return EXPORT_EDOWN;
        }
    }
}

static const char *mqtt_describe(void *impl)
{
    return ((mqtt_target *)impl)->describe;
}

static void mqtt_destroy(void *impl)
{
    mqtt_target *t = impl;
    if (!t)
        return;
    if (t->mosq) {
        mqtt_disconnect(t);
        mosquitto_destroy(t->mosq);
    }
    export_wipe(t->password, sizeof t->password);
    for (int i = 0; i < MQTT_WINDOW; i++)
        free(t->slots[i].state);
    free(t->mid_row);
    free(t->mid_slot);
    free(t);
    mosquitto_lib_cleanup();
}

static int mqtt_bind_catalog(void *impl, export_catalog *cat)
{
    ((mqtt_target *)impl)->cat = cat;
    return 0;
}

static const export_target_ops mqtt_ops = {
    .name = "mqtt",
    .group = "export-mqtt",
    .connect = mqtt_connect,
    .submit = mqtt_submit,
    .collect = mqtt_collect,
    .poll = mqtt_poll,
    .disconnect = mqtt_disconnect,
    .abandon = mqtt_abandon,
    .bind_catalog = mqtt_bind_catalog,
    .describe = mqtt_describe,
    .destroy = mqtt_destroy,
};

int mqtt_target_create(const config *cfg, const char *member, export_target *out, char *reason,
                       size_t len)
{
    const config_mqtt *m = &cfg->mqtt;
    mosquitto_lib_init();
    mqtt_target *t = calloc(1, sizeof *t);
    int rc = EXPORT_ENOMEM;
    if (!t || !(t->mid_row = malloc(MID_COUNT * sizeof *t->mid_row)) ||
        !(t->mid_slot = calloc(MID_COUNT, sizeof *t->mid_slot))) {
        snprintf(reason, len, "out of memory");
        goto fail;
    }
    if (m->batch_records > MQTT_MAX_BATCH) {
        snprintf(reason, len, "export.mqtt.batch_records %u is above %d", m->batch_records,
                 MQTT_MAX_BATCH);
        rc = EXPORT_EREJECT;
        goto fail;
    }
    snprintf(t->host, sizeof t->host, "%s", m->host);
    t->port = m->port;
    t->keepalive = (int)m->keepalive_s;
    t->qos = m->qos;
    t->retain = m->retain;
    snprintf(t->client_id, sizeof t->client_id, "%s-%s", m->client_id, member);
    snprintf(t->prefix, sizeof t->prefix, "%s", m->prefix);
    snprintf(t->username, sizeof t->username, "%s", m->username);
    snprintf(t->tls_ca_file, sizeof t->tls_ca_file, "%s", m->tls_ca_file);
    snprintf(t->tls_ca_path, sizeof t->tls_ca_path, "%s", m->tls_ca_path);
    snprintf(t->tls_cert_file, sizeof t->tls_cert_file, "%s", m->tls_cert_file);
    snprintf(t->tls_key_file, sizeof t->tls_key_file, "%s", m->tls_key_file);
    t->tls_insecure = m->tls_insecure;
    t->ack_timeout_ms = m->ack_timeout_ms;
    snprintf(t->describe, sizeof t->describe, "%s:%d client_id=%s%s%s%s", t->host, t->port,
             t->client_id, t->username[0] ? " user=" : "", t->username,
             (t->tls_ca_file[0] || t->tls_ca_path[0]) ? " tls" : "");
    if (m->password_file[0]) {
        bool insecure;
        rc = export_read_secret(m->password_file, t->password, sizeof t->password, &insecure,
                                reason, len);
        if (rc)
            goto fail;
        if (insecure)
            log_warn("mqtt: password file %s may be read by group or others (chmod 600)",
                     m->password_file);
        t->have_password = true;
    }
    /* A client now, so that bad TLS files are reported at start. */
    if ((rc = new_client(t, reason, len)) != 0)
        goto fail;
    forget_batches(t);
    out->ops = &mqtt_ops;
    out->impl = t;
    out->window = MQTT_WINDOW;
    return 0;
fail:
    if (t) {
        if (t->mosq)
            mosquitto_destroy(t->mosq);
        export_wipe(t->password, sizeof t->password);
        free(t->mid_row);
        free(t->mid_slot);
        free(t);
    }
    mosquitto_lib_cleanup();
    return rc;
}
