// Package kine is the conformance kit's Backend for datastore plugins that answer with a kine
// sidecar (MySQL, PostgreSQL, NATS): it reaches a tenant's data the way the tenant's sidecar
// would, with the arguments, environment and files the plugin returned, and the credentials in
// them, never the DataStore's.
//
// # Sessions and the isolation check
//
// A kine tenant owns a whole backend namespace (a database, a bucket), so "/" is its root. To
// give the kit's isolation check teeth, a session addresses every namespace of the backend as
// one keyspace: its Prefix is "/<namespace>/" (the database or bucket name, path-escaped), and a
// key "/<other>/k" means key "/k" in namespace <other>, reached with the session's own
// credentials. When the kit asks tenant A's session for tenant B's key, the session really
// tries A's password (or user JWT) on B's database (or bucket), and the server must refuse.
//
// Keys of the session's own namespace are written as kine writes them (kine's SQL table and
// revision rows; kine's NATS key codec, JSON envelope and s2 compression), so that the plugin's
// Export, Import and GetUsage, which read and write the same format, are verified too. With
// Binary set, they go through a real kine process started from the sidecar spec instead, which
// also verifies that the sidecar's arguments, environment, files and permissions work with kine.
//
// # Residue
//
// Backend implements conformance.Inspector: after DeleteTenant it lists, with the DataStore's
// administrative credentials, the tenant's account, grants and database (SQL) or bucket (NATS)
// that remain. NATS users of decentralized JWT authentication live in no server registry and
// cannot be listed.
package kine

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/openhcp/kamaji/sdk/conformance"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// FilesDir is where the core mounts a sidecar's files.
const FilesDir = "/etc/kine"

// Backend opens sessions for kine sidecars with a mysql://, postgres:// (postgresql://) or
// nats:// endpoint.
type Backend struct {
	// Binary, when set, is a kine executable: each session then starts it with the sidecar's
	// arguments (its listen address moved to a free loopback port) and reaches its own
	// namespace through it, over the etcd API. Empty: the session writes kine's format itself.
	Binary string
}

var (
	_ conformance.Backend   = Backend{}
	_ conformance.Inspector = Backend{}
)

// BinaryFromEnv returns $KAMAJI_KINE_BIN, the kine executable tests use when it is set.
func BinaryFromEnv() string { return os.Getenv("KAMAJI_KINE_BIN") }

func (b Backend) Open(ctx context.Context, ds datastore.Config, t datastore.Tenant, conn datastore.Connection) (conformance.Session, error) {
	sc, err := Materialize(conn)
	if err != nil {
		return nil, err
	}
	var s namespaced
	switch sc.Scheme() {
	case "mysql":
		s, err = openMySQL(ctx, sc)
	case "postgres", "postgresql":
		s, err = openPostgres(ctx, sc)
	case "nats":
		s, err = openNATS(ctx, sc)
	default:
		err = fmt.Errorf("kine endpoint scheme %q: this backend knows mysql, postgres and nats", sc.Scheme())
	}
	if err != nil {
		sc.Close()
		return nil, err
	}
	r := &router{own: s, sc: sc}
	if b.Binary != "" {
		if r.proc, err = startKine(ctx, b.Binary, sc); err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

func (b Backend) Residue(ctx context.Context, ds datastore.Config, t datastore.Tenant, conn datastore.Connection) ([]string, error) {
	sc, err := Materialize(conn)
	if err != nil {
		return nil, err
	}
	defer sc.Close()
	switch sc.Scheme() {
	case "mysql":
		return mysqlResidue(ctx, ds, sc)
	case "postgres", "postgresql":
		return postgresResidue(ctx, ds, sc)
	case "nats":
		return natsResidue(ctx, ds, sc)
	}
	return nil, fmt.Errorf("kine endpoint scheme %q: this backend knows mysql, postgres and nats", sc.Scheme())
}

// namespaced is a tenant's access to the backend with its own credentials: its own namespace,
// and any other one by name (which the server must refuse).
type namespaced interface {
	Namespace() string
	Put(ctx context.Context, ns, key string, value []byte) error
	Get(ctx context.Context, ns, key string) ([]byte, bool, error)
	Close() error
}

// router maps the kit's keys ("/<namespace>/<key>") to namespaces.
type router struct {
	own  namespaced
	sc   *Sidecar
	proc *kineProcess
}

func (r *router) Prefix() string { return "/" + url.PathEscape(r.own.Namespace()) + "/" }

func (r *router) route(key string) (ns, rel string, err error) {
	rest, ok := strings.CutPrefix(key, "/")
	seg, rel, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		return "", "", fmt.Errorf("key %q is not /<namespace>/<key>", key)
	}
	if ns, err = url.PathUnescape(seg); err != nil {
		return "", "", fmt.Errorf("key %q: %w", key, err)
	}
	return ns, "/" + rel, nil
}

func (r *router) Put(ctx context.Context, key string, value []byte) error {
	ns, rel, err := r.route(key)
	if err != nil {
		return err
	}
	if ns == r.own.Namespace() && r.proc != nil {
		return r.proc.Put(ctx, rel, value)
	}
	return r.own.Put(ctx, ns, rel, value)
}

func (r *router) Get(ctx context.Context, key string) ([]byte, bool, error) {
	ns, rel, err := r.route(key)
	if err != nil {
		return nil, false, err
	}
	if ns == r.own.Namespace() && r.proc != nil {
		return r.proc.Get(ctx, rel)
	}
	return r.own.Get(ctx, ns, rel)
}

func (r *router) Close() error {
	var errs []error
	if r.proc != nil {
		errs = append(errs, r.proc.Close())
	}
	if r.own != nil {
		errs = append(errs, r.own.Close())
	}
	r.sc.Close()
	return errors.Join(errs...)
}

// Sidecar is a kine sidecar spec as the container would see it: arguments with $(VAR)
// references expanded from its environment, as the kubelet does, and its files written to a
// temporary directory that stands in for /etc/kine (paths in arguments, environment values and
// file contents are rewritten to it).
type Sidecar struct {
	Args []string
	Env  map[string]string
	// Dir holds the files; Close removes it.
	Dir string
	// Listen is the sidecar's ListenEndpoint.
	Listen string
}

// Materialize expands conn's kine sidecar. Call Close when done.
func Materialize(conn datastore.Connection) (*Sidecar, error) {
	k := conn.Kine
	if k == nil {
		return nil, errors.New("the kine backend needs a kine sidecar connection")
	}
	dir, err := os.MkdirTemp("", "kamaji-kine-")
	if err != nil {
		return nil, err
	}
	sc := &Sidecar{Env: map[string]string{}, Dir: dir, Listen: k.ListenEndpoint}
	rewrite := func(s string) string { return strings.ReplaceAll(s, FilesDir+"/", dir+"/") }
	for _, f := range k.Files {
		rel, ok := strings.CutPrefix(path.Clean(f.Path), FilesDir+"/")
		if !ok {
			sc.Close()
			return nil, fmt.Errorf("sidecar file %s is outside %s, where the core mounts files", f.Path, FilesDir)
		}
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			sc.Close()
			return nil, err
		}
		if err := os.WriteFile(p, []byte(rewrite(string(f.Content))), 0o600); err != nil {
			sc.Close()
			return nil, err
		}
	}
	// The kubelet expands references to variables defined earlier in the list.
	for _, e := range k.Env {
		sc.Env[e.Name] = rewrite(expand(e.Value, sc.Env))
	}
	for _, a := range k.Args {
		sc.Args = append(sc.Args, rewrite(expand(a, sc.Env)))
	}
	return sc, nil
}

// Close removes the sidecar's files.
func (s *Sidecar) Close() { _ = os.RemoveAll(s.Dir) }

// Flag returns the value of --name=value (or "--name value") in the arguments, else kine's
// environment variable for it.
func (s *Sidecar) Flag(name, env string) string {
	for i, a := range s.Args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
		if a == "--"+name && i+1 < len(s.Args) {
			return s.Args[i+1]
		}
	}
	return s.Env[env]
}

// Endpoint is kine's --endpoint.
func (s *Sidecar) Endpoint() string { return s.Flag("endpoint", "KINE_ENDPOINT") }

// Scheme is the endpoint's scheme: mysql, postgres, nats...
func (s *Sidecar) Scheme() string {
	scheme, _, _ := strings.Cut(s.Endpoint(), "://")
	return scheme
}

// TLSFiles are kine's --ca-file, --cert-file and --key-file.
func (s *Sidecar) TLSFiles() (ca, cert, key string) {
	return s.Flag("ca-file", "KINE_CA_FILE"), s.Flag("cert-file", "KINE_CERT_FILE"), s.Flag("key-file", "KINE_KEY_FILE")
}

// expand is the kubelet's expansion of container arguments and environment values: $(NAME) is
// the value of NAME when defined (left as is otherwise), $$ is a literal $.
func expand(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString("$(")
				i++
				continue
			}
			name := s[i+2 : i+2+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
