/* SPDX-License-Identifier: MIT */
/*
 * The few libuv calls the addon makes, declared as libuv 1.x, whose ABI is
 * stable within the major version, has them. Node exports these symbols to
 * addons, but node-api-headers ships no uv.h and Node's own headers are not
 * always installed, so the addon does not need them: handles are opaque
 * here, allocated with uv_handle_size() and reached through
 * uv_handle_get_data() / uv_handle_set_data() (libuv 1.19, Node 10).
 *
 * When a uv.h is found, scripts/build.js compiles this file once more after
 * it (SHMPIPE_UV_CHECK): every prototype below must then match libuv's own,
 * and every constant its value, or the build fails.
 */
#ifndef SHMPIPE_NODE_UV_MIN_H
#define SHMPIPE_NODE_UV_MIN_H

#include <stddef.h>

/* The handle types used here (values from UV_HANDLE_TYPE_MAP) and the poll event. */
#define SHMPIPE_UV_IDLE	    6
#define SHMPIPE_UV_POLL	    8
#define SHMPIPE_UV_READABLE 1

#ifndef SHMPIPE_UV_CHECK
typedef struct uv_loop_s uv_loop_t;
typedef struct uv_handle_s uv_handle_t;
typedef struct uv_poll_s uv_poll_t;
typedef struct uv_idle_s uv_idle_t;
typedef enum { UV_IDLE = SHMPIPE_UV_IDLE, UV_POLL = SHMPIPE_UV_POLL } uv_handle_type;
enum uv_poll_event { UV_READABLE = SHMPIPE_UV_READABLE };
typedef void (*uv_close_cb)(uv_handle_t *handle);
typedef void (*uv_poll_cb)(uv_poll_t *handle, int status, int events);
typedef void (*uv_idle_cb)(uv_idle_t *handle);
#endif

size_t uv_handle_size(uv_handle_type type);
void *uv_handle_get_data(const uv_handle_t *handle);
void uv_handle_set_data(uv_handle_t *handle, void *data);
void uv_close(uv_handle_t *handle, uv_close_cb close_cb);
int uv_backend_fd(const uv_loop_t *loop);
int uv_poll_init(uv_loop_t *loop, uv_poll_t *handle, int fd);
int uv_poll_start(uv_poll_t *handle, int events, uv_poll_cb cb);
int uv_poll_stop(uv_poll_t *handle);
int uv_idle_init(uv_loop_t *loop, uv_idle_t *idle);
int uv_idle_start(uv_idle_t *idle, uv_idle_cb cb);
int uv_idle_stop(uv_idle_t *idle);

#ifdef SHMPIPE_UV_CHECK
_Static_assert(UV_IDLE == SHMPIPE_UV_IDLE && UV_POLL == SHMPIPE_UV_POLL, "libuv handle types");
_Static_assert(UV_READABLE == SHMPIPE_UV_READABLE, "libuv poll events");
#endif

#endif
