package kine

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/openhcp/kamaji/sdk/datastore"
)

// natsTarget is where and how a kine NATS endpoint connects.
type natsTarget struct {
	url    string
	bucket string
	opts   []nats.Option
}

// natsContext is the part of a NATS CLI context file (natscontext) kine's sidecars use.
type natsContext struct {
	URL         string `json:"url"`
	User        string `json:"user"`
	Password    string `json:"password"`
	Token       string `json:"token"`
	Creds       string `json:"creds"`
	NKey        string `json:"nkey"`
	Cert        string `json:"cert"`
	Key         string `json:"key"`
	CA          string `json:"ca"`
	InboxPrefix string `json:"inbox_prefix"`
}

// natsEndpoint parses the sidecar's endpoint as kine does (nats://[auth@]host[:port][,...]
// with bucket, contextFile, credsFile query parameters) plus its TLS files.
func natsEndpoint(sc *Sidecar) (*natsTarget, error) {
	conns := strings.Split(sc.Endpoint(), ",")
	u, err := url.Parse(conns[0])
	if err != nil {
		return nil, fmt.Errorf("kine endpoint: %w", err)
	}
	q := u.Query()
	t := &natsTarget{bucket: "kine"}
	if b := q.Get("bucket"); b != "" {
		t.bucket = b
	}
	ca, cert, key := sc.TLSFiles()
	if cert != "" && key != "" {
		t.opts = append(t.opts, nats.ClientCert(cert, key))
	}
	if ca != "" {
		t.opts = append(t.opts, nats.RootCAs(ca))
	}
	if f := q.Get("credsFile"); f != "" {
		t.opts = append(t.opts, nats.UserCredentials(f))
	}
	if f := q.Get("contextFile"); f != "" {
		if u.Host != "" {
			return nil, errors.New("kine endpoint: with contextFile, no host may be given")
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("kine context file: %w", err)
		}
		var c natsContext
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("kine context file %s: %w", f, err)
		}
		conns = strings.Split(c.URL, ",")
		switch {
		case c.User != "":
			t.opts = append(t.opts, nats.UserInfo(c.User, c.Password))
		case c.Creds != "":
			t.opts = append(t.opts, nats.UserCredentials(c.Creds))
		case c.NKey != "":
			opt, err := nats.NkeyOptionFromSeed(c.NKey)
			if err != nil {
				return nil, err
			}
			t.opts = append(t.opts, opt)
		}
		if c.Token != "" {
			t.opts = append(t.opts, nats.Token(c.Token))
		}
		if c.Cert != "" && c.Key != "" {
			t.opts = append(t.opts, nats.ClientCert(c.Cert, c.Key))
		}
		if c.CA != "" {
			t.opts = append(t.opts, nats.RootCAs(c.CA))
		}
		if c.InboxPrefix != "" {
			t.opts = append(t.opts, nats.CustomInboxPrefix(c.InboxPrefix))
		}
	}
	var servers []string
	for i, c := range conns {
		cu, err := url.Parse(strings.TrimSpace(c))
		if err != nil {
			return nil, err
		}
		if cu.Scheme != "nats" && cu.Scheme != "tls" {
			return nil, fmt.Errorf("kine endpoint: invalid connection %q", c)
		}
		if cu.User != nil && i == 0 {
			if p, ok := cu.User.Password(); ok {
				t.opts = append(t.opts, nats.UserInfo(cu.User.Username(), p))
			} else {
				t.opts = append(t.opts, nats.Token(cu.User.Username()))
			}
		}
		servers = append(servers, cu.Scheme+"://"+cu.Host)
	}
	t.url = strings.Join(servers, ",")
	return t, nil
}

type natsSession struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	bucket string
	mu     sync.Mutex
	kvs    map[string]jetstream.KeyValue
	// asyncErr is the server's last asynchronous error, such as a permissions violation, which
	// NATS reports apart from the request it concerns.
	errMu    sync.Mutex
	asyncErr error
}

// opTimeout bounds a session's request: a request the server drops (a permissions violation,
// a deleted stream) is otherwise only answered by the caller's deadline.
const opTimeout = 10 * time.Second

func (s *natsSession) forget() {
	s.errMu.Lock()
	s.asyncErr = nil
	s.errMu.Unlock()
}

// explain adds the server's last asynchronous error to a request that went unanswered.
func (s *natsSession) explain(err error) error {
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.asyncErr != nil {
		return fmt.Errorf("%w (the server said: %v)", err, s.asyncErr)
	}
	return err
}

func openNATS(ctx context.Context, sc *Sidecar) (namespaced, error) {
	t, err := natsEndpoint(sc)
	if err != nil {
		return nil, err
	}
	s := &natsSession{bucket: t.bucket, kvs: map[string]jetstream.KeyValue{}}
	nc, err := nats.Connect(t.url, append(t.opts, nats.Timeout(10*time.Second), nats.NoReconnect(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			s.errMu.Lock()
			s.asyncErr = err
			s.errMu.Unlock()
		}))...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS with the tenant's credentials: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	s.nc, s.js = nc, js
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if _, err := s.kv(octx, t.bucket); err != nil {
		nc.Close()
		return nil, fmt.Errorf("open bucket %q with the tenant's credentials: %w", t.bucket, err)
	}
	return s, nil
}

func (s *natsSession) Namespace() string { return s.bucket }

func (s *natsSession) Close() error { s.nc.Close(); return nil }

// foreignTimeout bounds an access to another tenant's bucket: a permission violation often
// shows as a request without an answer.
const foreignTimeout = 3 * time.Second

func (s *natsSession) kv(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if kv, ok := s.kvs[bucket]; ok {
		return kv, nil
	}
	kv, err := s.js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, err
	}
	s.kvs[bucket] = kv
	return kv, nil
}

// natsData is kine's envelope of a value in its NATS bucket.
type natsData struct {
	KV           *natsKeyValue `json:"KV"`
	PrevRevision int64         `json:"PrevRevision"`
	Create       bool          `json:"Create"`
	Delete       bool          `json:"Delete"`
}

type natsKeyValue struct {
	Key            string
	Value          []byte
	Version        int64
	CreateRevision int64
	ModRevision    int64
	Lease          int64
}

// Put writes key as kine's Create (absent key) or Update (present key) does.
func (s *natsSession) Put(ctx context.Context, bucket, key string, value []byte) error {
	s.forget()
	return s.explain(s.put(ctx, bucket, key, value))
}

func (s *natsSession) put(ctx context.Context, bucket, key string, value []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout(bucket))
	defer cancel()
	kv, err := s.kv(ctx, bucket)
	if err != nil {
		return err
	}
	ek, err := EncodeNATSKey(key)
	if err != nil {
		return err
	}
	nd := natsData{KV: &natsKeyValue{Key: key, Value: value}}
	e, err := kv.Get(ctx, ek)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		nd.Create = true
		b, err := encodeNATSValue(nd)
		if err != nil {
			return err
		}
		_, err = kv.Create(ctx, ek, b)
		return err
	case err != nil:
		return err
	}
	prev, err := DecodeNATSValue(e.Value())
	if err != nil {
		return err
	}
	if prev.Delete {
		nd.Create, nd.PrevRevision = true, int64(e.Revision())
	} else {
		nd.PrevRevision = int64(e.Revision())
		nd.KV.CreateRevision = prev.KV.CreateRevision
		if nd.KV.CreateRevision == 0 {
			nd.KV.CreateRevision = int64(e.Revision())
		}
	}
	b, err := encodeNATSValue(nd)
	if err != nil {
		return err
	}
	_, err = kv.Update(ctx, ek, b, e.Revision())
	return err
}

func (s *natsSession) Get(ctx context.Context, bucket, key string) ([]byte, bool, error) {
	s.forget()
	v, ok, err := s.get(ctx, bucket, key)
	return v, ok, s.explain(err)
}

func (s *natsSession) timeout(bucket string) time.Duration {
	if bucket != s.bucket {
		return foreignTimeout
	}
	return opTimeout
}

func (s *natsSession) get(ctx context.Context, bucket, key string) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout(bucket))
	defer cancel()
	kv, err := s.kv(ctx, bucket)
	if err != nil {
		return nil, false, err
	}
	ek, err := EncodeNATSKey(key)
	if err != nil {
		return nil, false, err
	}
	e, err := kv.Get(ctx, ek)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	nd, err := DecodeNATSValue(e.Value())
	if err != nil {
		return nil, false, err
	}
	if nd.Delete || nd.KV == nil {
		return nil, false, nil
	}
	v := nd.KV.Value
	if v == nil {
		v = []byte{}
	}
	return v, true, nil
}

func encodeNATSValue(nd natsData) ([]byte, error) {
	j, err := json.Marshal(nd)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w := s2.NewWriter(&buf)
	if err := w.EncodeBuffer(j); err != nil {
		w.Close()
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DecodeNATSValue reads kine's envelope: s2-compressed JSON.
func DecodeNATSValue(b []byte) (natsData, error) {
	var nd natsData
	j, err := readAllS2(b)
	if err != nil {
		return nd, fmt.Errorf("kine value: %w", err)
	}
	if err := json.Unmarshal(j, &nd); err != nil {
		return nd, fmt.Errorf("kine value: %w", err)
	}
	return nd, nil
}

func readAllS2(b []byte) ([]byte, error) {
	var out bytes.Buffer
	r := s2.NewReader(bytes.NewReader(b))
	if _, err := out.ReadFrom(r); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// EncodeNATSKey is kine's key codec: "/a/b" becomes base58("a").base58("b"); a key without a
// leading "/" is prefixed with "meta."; an empty segment is encoded as "/".
func EncodeNATSKey(key string) (string, error) {
	if key == "" || key == "/" {
		return "", jetstream.ErrInvalidKey
	}
	var parts []string
	rooted := strings.HasPrefix(key, "/")
	if !rooted {
		parts = append(parts, "meta")
	}
	for _, p := range strings.Split(strings.TrimPrefix(key, "/"), "/") {
		if p == "" {
			p = "/"
		}
		parts = append(parts, base58(p))
	}
	return strings.Join(parts, "."), nil
}

// base58 encodes like github.com/shengdoushi/base58 with the Bitcoin alphabet.
func base58(s string) string {
	b := []byte(s)
	n := new(big.Int).SetBytes(b)
	var out []byte
	mod, radix := new(big.Int), big.NewInt(58)
	for n.Sign() > 0 {
		n.DivMod(n, radix, mod)
		out = append(out, base58Alphabet[mod.Int64()])
	}
	for _, c := range b {
		if c != 0 {
			break
		}
		out = append(out, base58Alphabet[0])
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}

// natsAdmin connects with the DataStore's credentials, read like the NATS plugin reads them: an
// account signing key seed (SA...) as the password means JWT mode, where a short-lived user of
// that account is minted; otherwise username and password, if any.
func natsAdmin(ds datastore.Config) (*nats.Conn, error) {
	var servers []string
	for _, ep := range ds.Endpoints {
		if !strings.Contains(ep, "://") {
			ep = "nats://" + ep
		}
		servers = append(servers, ep)
	}
	opts := []nats.Option{nats.Timeout(10 * time.Second), nats.NoReconnect()}
	if len(ds.CACert) > 0 {
		tc := &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}
		tc.RootCAs.AppendCertsFromPEM(ds.CACert)
		if len(ds.ClientCert) > 0 {
			pair, err := tls.X509KeyPair(ds.ClientCert, ds.ClientKey)
			if err != nil {
				return nil, err
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		opts = append(opts, nats.Secure(tc))
	}
	switch {
	case strings.HasPrefix(ds.Password, "SA"):
		kp, err := nkeys.FromSeed([]byte(ds.Password))
		if err != nil {
			return nil, fmt.Errorf("password: %w", err)
		}
		pub, _ := kp.PublicKey()
		account := ds.Username
		if account == "" {
			account = pub
		}
		ukp, err := nkeys.CreateUser()
		if err != nil {
			return nil, err
		}
		upub, _ := ukp.PublicKey()
		useed, _ := ukp.Seed()
		uc := jwt.NewUserClaims(upub)
		uc.Name = "kamaji-conformance-inspector"
		uc.Expires = time.Now().Add(10 * time.Minute).Unix()
		if account != pub {
			uc.IssuerAccount = account
		}
		tok, err := uc.Encode(kp)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserJWTAndSeed(tok, string(useed)))
	case ds.Username != "":
		opts = append(opts, nats.UserInfo(ds.Username, ds.Password))
	}
	return nats.Connect(strings.Join(servers, ","), opts...)
}

// natsResidue reports the tenant's bucket when it still exists.
func natsResidue(ctx context.Context, ds datastore.Config, sc *Sidecar) ([]string, error) {
	t, err := natsEndpoint(sc)
	if err != nil {
		return nil, err
	}
	nc, err := natsAdmin(ds)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	_, err = js.Stream(ctx, "KV_"+t.bucket)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return []string{fmt.Sprintf("bucket %q", t.bucket)}, nil
}
