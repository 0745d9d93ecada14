/*
 * starling-passwd: writes password files for starlingd (and Mosquitto), with mosquitto_passwd's
 * command line:
 *   starling-passwd [-H sha512-pbkdf2|sha512] [-I ITERATIONS] [-c | -D] FILE USER
 *   starling-passwd [-H ...] [-I ...] [-c] -b FILE USER PASSWORD
 *   starling-passwd [-H ...] [-I ...] -U FILE
 * Without -b the password is asked twice on the terminal with echo off (or read from stdin
 * when there is no terminal). The file is rewritten whole: every other line is kept as it was,
 * the user's line is replaced in place or appended; the new file is written next to the old
 * one and renamed over it, so a crash never leaves half a file. Hashes come from the broker's
 * own src/auth/passwd.c, so what this writes is exactly what starlingd reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "auth/file.h"
#include "auth/passwd.h"
#include "starling/error.h"

#define PW_INPUT_MAX 1024 /* longest password read from a prompt */

struct opts {
	enum auth_pw_kind kind; /* -H */
	uint32_t iterations;    /* -I */
	bool create;            /* -c */
	bool batch;             /* -b */
	bool delete_user;       /* -D */
	bool upgrade;           /* -U */
	const char *file;       /* password file */
	const char *user;       /* user name */
	const char *password;   /* -b: the password */
};

static void usage(FILE *f)
{
	fprintf(f,
	        "starling-passwd is a tool for managing password files for starlingd and "
	        "mosquitto.\n\n"
	        "Usage: starling-passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] [-c | -D] "
	        "passwordfile username\n"
	        "       starling-passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] [-c] -b "
	        "passwordfile username password\n"
	        "       starling-passwd -U passwordfile\n"
	        " -b : run in batch mode to allow passing passwords on the command line.\n"
	        " -c : create a new password file. This will overwrite existing files.\n"
	        " -D : delete the username rather than adding/updating its password.\n"
	        " -H : specify the hashing algorithm. Defaults to sha512-pbkdf2, which is "
	        "recommended.\n"
	        "      Mosquitto 1.6 and earlier defaulted to sha512.\n"
	        " -I : PBKDF2 iterations (default %u).\n"
	        " -U : update a plain text password file to use hashed passwords.\n",
	        AUTH_PW_ITERATIONS);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	int i = 1, rest;

	*o = (struct opts){.kind = AUTH_PW_SHA512_PBKDF2, .iterations = AUTH_PW_ITERATIONS};
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-c")) {
			o->create = true;
		} else if (!strcmp(a, "-b")) {
			o->batch = true;
		} else if (!strcmp(a, "-D")) {
			o->delete_user = true;
		} else if (!strcmp(a, "-U")) {
			o->upgrade = true;
		} else if (!strcmp(a, "-H") && i + 1 < argc) {
			a = argv[++i];
			if (!strcmp(a, "sha512-pbkdf2"))
				o->kind = AUTH_PW_SHA512_PBKDF2;
			else if (!strcmp(a, "sha512"))
				o->kind = AUTH_PW_SHA512;
			else
				return fprintf(stderr, "Error: Unknown hash type '%s'.\n", a), -1;
		} else if (!strcmp(a, "-I") && i + 1 < argc) {
			char *end;
			unsigned long v = strtoul(argv[++i], &end, 10);

			if (*argv[i] == '\0' || *end != '\0' || v < 1 || v > AUTH_PW_ITERATIONS_MAX)
				return fprintf(stderr, "Error: -I takes 1 to %u iterations.\n",
				               AUTH_PW_ITERATIONS_MAX),
				       -1;
			o->iterations = (uint32_t)v;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		} else {
			return usage(stderr), -1;
		}
	}
	rest = argc - i;
	if ((o->create && o->delete_user) || (o->upgrade && (o->create || o->delete_user)) ||
	    (o->batch && (o->delete_user || o->upgrade))) {
		fprintf(stderr, "Error: -c, -D, -U and -b do not all go together.\n");
		return -1;
	}
	if (rest != (o->upgrade ? 1 : o->batch ? 3 : 2))
		return usage(stderr), -1;
	o->file = argv[i];
	o->user = o->upgrade ? NULL : argv[i + 1];
	o->password = o->batch ? argv[i + 2] : NULL;
	if (o->user && (strchr(o->user, ':') || !*o->user || strlen(o->user) > AUTH_PW_USER_MAX))
		return fprintf(stderr, "Error: Username must not be empty or contain ':'.\n"), -1;
	return 0;
}

/* Reads one line from in (echo off when it is a terminal) after printing prompt to err. */
static int read_secret(FILE *in, FILE *err, const char *prompt, char *buf, size_t cap)
{
	struct termios old, quiet;
	bool tty = tcgetattr(fileno(in), &old) == 0;
	size_t n;
	char *ok;

	fputs(prompt, err);
	fflush(err);
	if (tty) {
		quiet = old;
		quiet.c_lflag &= (tcflag_t)~ECHO;
		tcsetattr(fileno(in), TCSAFLUSH, &quiet);
	}
	ok = fgets(buf, (int)cap, in);
	if (tty) {
		tcsetattr(fileno(in), TCSAFLUSH, &old);
		fputs("\n", err);
	}
	if (!ok)
		return -1;
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
	return 0;
}

/* The password twice, from /dev/tty if there is one, else from stdin. */
static int prompt_password(char *buf, size_t cap)
{
	char again[PW_INPUT_MAX];
	FILE *tty = fopen("/dev/tty", "r+e");
	FILE *in = tty ? tty : stdin, *err = tty ? tty : stderr;
	int rc = -1;

	if (read_secret(in, err, "Password: ", buf, cap) != 0 ||
	    read_secret(in, err, "Reenter password: ", again, sizeof(again)) != 0) {
		fprintf(stderr, "Error: Empty password.\n");
	} else if (strcmp(buf, again) != 0) {
		fprintf(stderr, "Error: Passwords do not match.\n");
	} else if (!*buf) {
		fprintf(stderr, "Error: Empty password.\n");
	} else {
		rc = 0;
	}
	memset(again, 0, sizeof(again));
	if (tty)
		fclose(tty);
	return rc;
}

/* "user:" + hash of password, into line. */
static int make_line(const struct opts *o, const char *user, size_t ulen, const char *pw, FILE *out)
{
	char enc[AUTH_PW_ENCODED_MAX];
	int rc = auth_pw_encode(o->kind, o->iterations, (const uint8_t *)pw, strlen(pw), enc,
	                        sizeof(enc));

	if (rc != ST_OK) {
		fprintf(stderr, "Error: Unable to hash password: %s\n", st_strerror(rc));
		return -1;
	}
	fprintf(out, "%.*s:%s\n", (int)ulen, user, enc);
	return 0;
}

/* The user name of a line (up to ':', blanks trimmed as the broker trims them). */
static bool line_user(const char *s, size_t n, const char **u, size_t *ulen)
{
	const char *colon = memchr(s, ':', n);

	if (!colon || s[0] == '#')
		return false;
	*u = s;
	*ulen = (size_t)(colon - s);
	while (*ulen && (**u == ' ' || **u == '\t')) {
		(*u)++;
		(*ulen)--;
	}
	while (*ulen && ((*u)[*ulen - 1] == ' ' || (*u)[*ulen - 1] == '\t'))
		(*ulen)--;
	return true;
}

/* -U: a line "user:plain" becomes "user:hash"; one already hashed stays as it is. */
static int upgrade_line(const struct opts *o, const char *s, size_t n, FILE *out)
{
	struct auth_pw_entry e;
	const char *u, *h;
	size_t ulen, hlen;
	char why[64], *pw;
	int rc;

	if (!line_user(s, n, &u, &ulen))
		return fprintf(out, "%.*s\n", (int)n, s) < 0 ? -1 : 0;
	h = memchr(s, ':', n) + 1;
	hlen = n - (size_t)(h - s);
	if (auth_pw_parse_hash(h, hlen, &e, why, sizeof(why)) == 0)
		return fprintf(out, "%.*s\n", (int)n, s) < 0 ? -1 : 0;
	pw = strndup(h, hlen);
	if (!pw)
		return -1;
	rc = make_line(o, u, ulen, pw, out);
	memset(pw, 0, hlen);
	free(pw);
	return rc;
}

/* Writes the new file's text to out from the old text (NULL with -c). */
static int rewrite(const struct opts *o, const char *old, size_t len, const char *pw, FILE *out)
{
	const char *p = old, *end = old ? old + len : NULL, *s;
	size_t n, ulen = o->user ? strlen(o->user) : 0;
	bool found = false;

	while (old && (s = auth_next_line(&p, end, &n)) != NULL) {
		const char *u;
		size_t un;

		if (o->upgrade) {
			if (upgrade_line(o, s, n, out) != 0)
				return -1;
			continue;
		}
		if (line_user(s, n, &u, &un) && un == ulen && !memcmp(u, o->user, ulen)) {
			found = true;
			if (o->delete_user)
				continue;
			if (make_line(o, o->user, ulen, pw, out) != 0)
				return -1;
			continue;
		}
		fprintf(out, "%.*s\n", (int)n, s);
	}
	if (o->delete_user && !found) {
		fprintf(stderr, "Warning: User %s not found in password file.\n", o->user);
		return 1;
	}
	if (!o->upgrade && !o->delete_user && !found)
		return make_line(o, o->user, ulen, pw, out);
	return 0;
}

/* Writes FILE.XXXXXX with the new text and renames it over FILE. */
static int write_file(const struct opts *o, const char *old, size_t len, const char *pw)
{
	size_t plen = strlen(o->file);
	char *tmp = malloc(plen + 8);
	struct stat st;
	FILE *out;
	int fd, rc;

	if (!tmp)
		return -1;
	memcpy(tmp, o->file, plen);
	memcpy(tmp + plen, ".XXXXXX", 8);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "Error: Unable to write %s: %s\n", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	/* The new file keeps the old one's mode; a new one gets what fopen(3) would give it, as
	 * mosquitto_passwd's do (a broker that drops root to its own user must read it). */
	if (stat(o->file, &st) == 0 && old) {
		fchmod(fd, st.st_mode & 07777);
	} else {
		mode_t mask = umask(0);

		umask(mask);
		fchmod(fd, 0666 & ~mask);
	}
	out = fdopen(fd, "w");
	rc = out ? rewrite(o, old, len, pw, out) : -1;
	if (out && (fflush(out) != 0 || fsync(fd) != 0))
		rc = -1;
	if (out)
		fclose(out);
	else
		close(fd);
	if (rc < 0 || rename(tmp, o->file) != 0) {
		if (rc >= 0)
			fprintf(stderr, "Error: Unable to replace %s: %s\n", o->file,
			        strerror(errno));
		unlink(tmp);
		rc = -1;
	}
	free(tmp);
	return rc;
}

int main(int argc, char **argv)
{
	char pwbuf[PW_INPUT_MAX], err[512];
	const char *pw = NULL;
	char *old = NULL;
	size_t len = 0;
	struct opts o;
	int rc;

	if (parse_args(argc, argv, &o) != 0)
		return 1;
	if (!o.create && auth_read_file(o.file, &old, &len, err, sizeof(err)) != ST_OK) {
		fprintf(stderr, "Error: %s\n", err);
		return 1;
	}
	if (!o.delete_user && !o.upgrade) {
		if (o.batch) {
			pw = o.password;
		} else if (prompt_password(pwbuf, sizeof(pwbuf)) == 0) {
			pw = pwbuf;
		} else {
			free(old);
			return 1;
		}
	}
	rc = write_file(&o, old, len, pw);
	memset(pwbuf, 0, sizeof(pwbuf));
	free(old);
	return rc < 0 ? 1 : rc;
}
