package datastore

import (
	"errors"
	"net/url"
	"slices"
	"strings"

	"github.com/openhcp/kamaji/sdk"
)

// minSecretLen: shorter values are not scrubbed, since replacing every occurrence of a one- or
// two-letter string would make messages unreadable while hiding nothing worth hiding.
const minSecretLen = 4

// Redact removes from err's message every secret value of cfg (password, client key, CA key),
// as written and in the escaped forms a DSN or URL gives them, so that an error a plugin built
// from its connection string cannot publish a credential in a condition, event or log. The
// result keeps err's chain for errors.Is/As (sdk.ErrUnimplemented, status codes), and the
// *sdk.FieldError and *sdk.OwnedError in it are scrubbed in place.
func Redact(err error, cfg Config) error {
	if err == nil {
		return nil
	}
	secrets := secretForms(cfg)
	if len(secrets) == 0 {
		return err
	}
	var fe *sdk.FieldError
	if errors.As(err, &fe) {
		fe.Message = scrub(fe.Message, secrets)
	}
	var oe *sdk.OwnedError
	if errors.As(err, &oe) {
		oe.Message = scrub(oe.Message, secrets)
	}
	msg := err.Error()
	if clean := scrub(msg, secrets); clean != msg {
		return &redacted{msg: clean, err: err}
	}
	return err
}

// Redacted is what replaces a secret in a message.
const Redacted = "[REDACTED]"

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

func secretForms(cfg Config) []string {
	var out []string
	for _, v := range []string{cfg.Password, string(cfg.ClientKey), string(cfg.CAKey)} {
		if len(v) < minSecretLen {
			continue
		}
		out = append(out, v, url.QueryEscape(v), url.PathEscape(v), url.UserPassword("u", v).String()[2:])
		// A PEM key may be echoed line by line or with its newlines escaped.
		out = append(out, strings.ReplaceAll(v, "\n", `\n`))
		for line := range strings.Lines(v) {
			if line = strings.TrimSpace(line); len(line) >= 16 && !strings.HasPrefix(line, "-----") {
				out = append(out, line)
			}
		}
	}
	// Longest first, so a form that contains another is replaced whole.
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}

func scrub(s string, secrets []string) string {
	for _, v := range secrets {
		if len(v) >= minSecretLen {
			s = strings.ReplaceAll(s, v, Redacted)
		}
	}
	return s
}
