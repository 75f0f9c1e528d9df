/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Diagnostics that never allocate.
 *
 * A panic is the kernel's panic(): something is so wrong that continuing
 * would corrupt memory.  slabkit formats "slabkit: <function>: <what>" into
 * a stack buffer with its own small formatter (no stdio, no malloc: the
 * heap may be the thing that is broken), hands it to the panic handler,
 * and aborts.  Tests install their own handler or run the failing call in
 * a child (tests/harness).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void
default_panic_handler(const char *msg)
{
	sk_os_write(2, msg, strlen(msg));
}

static slabkit_panic_fn *_Atomic panic_handler = default_panic_handler;

slabkit_panic_fn *
slabkit_set_panic_handler(slabkit_panic_fn *fn)
{
	if (fn == NULL)
		fn = default_panic_handler;
	return atomic_exchange(&panic_handler, fn);
}

static size_t
put_str(char *buf, size_t len, size_t pos, const char *s)
{
	while (*s != '\0') {
		if (pos + 1 < len)
			buf[pos] = *s;
		pos++;
		s++;
	}
	return pos;
}

static size_t
put_num(char *buf, size_t len, size_t pos, unsigned long long v, int base,
    int neg)
{
	char tmp[32];
	int i = 0;

	do {
		tmp[i++] = "0123456789abcdef"[v % (unsigned)base];
		v /= (unsigned)base;
	} while (v != 0);
	if (neg)
		tmp[i++] = '-';
	while (i > 0) {
		if (pos + 1 < len)
			buf[pos] = tmp[i - 1];
		pos++;
		i--;
	}
	return pos;
}

size_t
sk_vfmt(char *buf, size_t len, const char *fmt, va_list ap)
{
	size_t pos = 0;

	for (; *fmt != '\0'; fmt++) {
		int lng = 0, sz = 0;

		if (*fmt != '%') {
			if (pos + 1 < len)
				buf[pos] = *fmt;
			pos++;
			continue;
		}
		fmt++;
		while (*fmt == 'l' || *fmt == 'z') {
			if (*fmt == 'l')
				lng++;
			else
				sz = 1;
			fmt++;
		}
		switch (*fmt) {
		case 'd': {
			long long v = sz ? (long long)va_arg(ap, ssize_t)
				      : lng ? va_arg(ap, long)
					    : va_arg(ap, int);
			pos = put_num(buf, len, pos,
			    v < 0 ? -(unsigned long long)v : (unsigned long long)v,
			    10, v < 0);
			break;
		}
		case 'u':
		case 'x': {
			unsigned long long v = sz ? va_arg(ap, size_t)
					       : lng ? va_arg(ap, unsigned long)
						     : va_arg(ap, unsigned);
			pos = put_num(buf, len, pos, v, *fmt == 'x' ? 16 : 10, 0);
			break;
		}
		case 'p':
			pos = put_str(buf, len, pos, "0x");
			pos = put_num(buf, len, pos,
			    (unsigned long long)(uintptr_t)va_arg(ap, void *), 16,
			    0);
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			pos = put_str(buf, len, pos, s != NULL ? s : "(null)");
			break;
		}
		case 'c':
			if (pos + 1 < len)
				buf[pos] = (char)va_arg(ap, int);
			pos++;
			break;
		case '%':
			if (pos + 1 < len)
				buf[pos] = '%';
			pos++;
			break;
		default:
			return pos < len ? (buf[pos] = '\0', pos) : pos;
		}
	}
	if (len > 0)
		buf[pos < len ? pos : len - 1] = '\0';
	return pos;
}

size_t
sk_fmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = sk_vfmt(buf, len, fmt, ap);
	va_end(ap);
	return n;
}

/* "slabkit: func: <what>\n" into buf. */
static void
format_message(char *buf, size_t len, const char *func, const char *fmt,
    va_list ap)
{
	size_t pos = sk_fmt(buf, len, "slabkit: %s: ", func);

	if (pos < len)
		pos += sk_vfmt(buf + pos, len - pos, fmt, ap);
	if (pos + 2 > len)
		pos = len - 2;
	buf[pos] = '\n';
	buf[pos + 1] = '\0';
}

void
sk_vpanic(const char *func, const char *fmt, va_list ap)
{
	char msg[512];

	format_message(msg, sizeof(msg), func, fmt, ap);
	atomic_load(&panic_handler)(msg);
	abort();
}

void
sk_panic(const char *func, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sk_vpanic(func, fmt, ap);
}

void
sk_warn(const char *func, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	format_message(msg, sizeof(msg), func, fmt, ap);
	va_end(ap);
	sk_os_write(2, msg, strlen(msg));
}
