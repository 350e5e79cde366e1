// Package backup writes one tenant's datastore keys to a portable archive and reads them back
// into any driver's slice, through the same Export and Import streams a migration uses.
//
// The archive (format version 1) is a gzip stream holding:
//
//	"KAMAJI-TENANT-BACKUP\n"             magic, 21 bytes
//	frame*                               type (1 byte) | payload length (uvarint) | payload
//	  'H' once, first: the Header, JSON
//	  'C' a chunk of keys: (key length uvarint | key | value length uvarint | value)*
//	  'E' once, last: the Trailer, JSON
//
// Keys are stored in the apiserver's key space (relative to its storage prefix:
// "configmaps/default/a"), whatever the source driver's layout, so an archive restores into
// any driver. The trailer carries the key count, the byte count, the order-independent digest a
// migration compares, and the SHA-256 of every uncompressed byte before the 'E' frame; a reader
// refuses an archive whose bytes or keys do not match it.
package backup

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/openhcp/kamaji/core/migration"
	"github.com/openhcp/kamaji/sdk/datastore"
)

// FormatVersion is the archive format this package writes; readers refuse a newer one.
const FormatVersion = 1

const magic = "KAMAJI-TENANT-BACKUP\n"

// maxFrame bounds a frame a reader accepts, so a corrupt length cannot ask for gigabytes.
const maxFrame = 64 << 20

// chunkBytes is how much a writer gathers into one 'C' frame, and a reader into one Import chunk.
const chunkBytes = 1 << 20

const (
	frameHeader  = 'H'
	frameChunk   = 'C'
	frameTrailer = 'E'
)

// Header describes where an archive comes from.
type Header struct {
	FormatVersion int       `json:"formatVersion"`
	Created       time.Time `json:"created"`
	// Tenant is the TenantControlPlane the keys belong to.
	Tenant TenantRef `json:"tenant"`
	// KubernetesVersion is the tenant's version when the backup was taken: its apiserver wrote
	// the objects, so a restore needs this minor or a later one.
	KubernetesVersion string `json:"kubernetesVersion"`
	// DataStore and Driver are the source.
	DataStore string `json:"dataStore"`
	Driver    string `json:"driver"`
	// Producer is the program and version that wrote the archive.
	Producer string `json:"producer,omitempty"`
}

// TenantRef names a TenantControlPlane.
type TenantRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid,omitempty"`
}

// Trailer closes an archive.
type Trailer struct {
	Keys  int64  `json:"keys"`
	Bytes int64  `json:"bytes"`
	Sum   string `json:"sum"`
	// SHA256 is over every uncompressed byte before the trailer frame (magic included).
	SHA256 string `json:"sha256"`
}

// Writer writes an archive; Close writes the trailer.
type Writer struct {
	gz     *gzip.Writer
	hash   hash.Hash
	out    io.Writer // hash and gzip together
	chunk  []byte
	digest migration.Digest
	err    error
}

// NewWriter starts an archive on w with h (its FormatVersion is set).
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	gz := gzip.NewWriter(w)
	sum := sha256.New()
	bw := &Writer{gz: gz, hash: sum, out: io.MultiWriter(gz, sum)}
	h.FormatVersion = FormatVersion
	js, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(bw.out, magic); err != nil {
		return nil, err
	}
	if err := bw.frame(frameHeader, js); err != nil {
		return nil, err
	}
	return bw, nil
}

func (w *Writer) frame(typ byte, payload []byte) error {
	var hdr [1 + binary.MaxVarintLen64]byte
	hdr[0] = typ
	n := binary.PutUvarint(hdr[1:], uint64(len(payload)))
	if _, err := w.out.Write(hdr[:1+n]); err != nil {
		return err
	}
	_, err := w.out.Write(payload)
	return err
}

// Add appends one key (in the apiserver's key space) and its value.
func (w *Writer) Add(key, value []byte) error {
	if w.err != nil {
		return w.err
	}
	w.chunk = binary.AppendUvarint(w.chunk, uint64(len(key)))
	w.chunk = append(w.chunk, key...)
	w.chunk = binary.AppendUvarint(w.chunk, uint64(len(value)))
	w.chunk = append(w.chunk, value...)
	w.digest.Add(key, value)
	if len(w.chunk) >= chunkBytes {
		w.err = w.flush()
	}
	return w.err
}

func (w *Writer) flush() error {
	if len(w.chunk) == 0 {
		return nil
	}
	err := w.frame(frameChunk, w.chunk)
	w.chunk = w.chunk[:0]
	return err
}

// Digest is what was added so far.
func (w *Writer) Digest() migration.Digest { return w.digest }

// Close writes the last chunk and the trailer and flushes the compressor (not w's target).
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if err := w.flush(); err != nil {
		return err
	}
	t := Trailer{Keys: w.digest.Keys, Bytes: w.digest.Bytes, Sum: hex.EncodeToString(w.digest.Sum[:]), SHA256: hex.EncodeToString(w.hash.Sum(nil))}
	js, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if err := w.frame(frameTrailer, js); err != nil {
		return err
	}
	return w.gz.Close()
}

// Reader reads an archive written by Writer.
type Reader struct {
	br      consumed
	hash    hash.Hash
	header  Header
	trailer *Trailer
	digest  migration.Digest
}

// ErrCorrupt is wrapped by every error about an archive's content.
var ErrCorrupt = errors.New("not a valid tenant backup")

func corrupt(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, a...))
}

// NewReader reads the magic and the header.
func NewReader(r io.Reader) (*Reader, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, corrupt("not gzip: %v", err)
	}
	sum := sha256.New()
	rd := &Reader{br: consumed{bufio.NewReader(gz), sum}, hash: sum}
	m := make([]byte, len(magic))
	if _, err := io.ReadFull(rd.br, m); err != nil || string(m) != magic {
		return nil, corrupt("no %q magic at the start", magic[:len(magic)-1])
	}
	typ, payload, err := rd.next()
	if err != nil {
		return nil, err
	}
	if typ != frameHeader {
		return nil, corrupt("the first frame is %q, not the header", typ)
	}
	if err := json.Unmarshal(payload, &rd.header); err != nil {
		return nil, corrupt("header: %v", err)
	}
	if rd.header.FormatVersion < 1 || rd.header.FormatVersion > FormatVersion {
		return nil, fmt.Errorf("archive format version %d: this build reads versions 1 to %d", rd.header.FormatVersion, FormatVersion)
	}
	return rd, nil
}

// Header is the archive's header.
func (r *Reader) Header() Header { return r.header }

func (r *Reader) next() (byte, []byte, error) {
	typ, err := r.br.ReadByte()
	if err != nil {
		return 0, nil, corrupt("truncated: %v", noEOF(err))
	}
	n, err := binary.ReadUvarint(r.br)
	if err != nil {
		return 0, nil, corrupt("truncated frame length: %v", noEOF(err))
	}
	if n > maxFrame {
		return 0, nil, corrupt("a %q frame of %d bytes (at most %d)", typ, n, maxFrame)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r.br, payload); err != nil {
		return 0, nil, corrupt("truncated %q frame: %v", typ, noEOF(err))
	}
	return typ, payload, nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Chunks yields the archive's keys a chunk at a time (memory bounded by the chunk size). The
// sequence ends with an error if the archive is corrupt, truncated or does not match its
// trailer; the keys of a chunk are only valid until the next one.
func (r *Reader) Chunks(yield func([]datastore.KeyValue, error) bool) {
	var kvs []datastore.KeyValue
	for {
		sumBefore := r.hash.Sum(nil)
		typ, payload, err := r.next()
		if err != nil {
			yield(nil, err)
			return
		}
		switch typ {
		case frameChunk:
			kvs = kvs[:0]
			for len(payload) > 0 {
				var k, v []byte
				if k, payload, err = field(payload); err == nil {
					v, payload, err = field(payload)
				}
				if err != nil {
					yield(nil, err)
					return
				}
				r.digest.Add(k, v)
				kvs = append(kvs, datastore.KeyValue{Key: k, Value: v})
			}
			if !yield(kvs, nil) {
				return
			}
		case frameTrailer:
			// The hash ran over the trailer frame too: compare with what it was before.
			var t Trailer
			if err := json.Unmarshal(payload, &t); err != nil {
				yield(nil, corrupt("trailer: %v", err))
				return
			}
			if err := r.check(t, sumBefore[:]); err != nil {
				yield(nil, err)
				return
			}
			r.trailer = &t
			return
		default:
			yield(nil, corrupt("unknown frame type %q", typ))
			return
		}
	}
}

// check compares what was read with the trailer; sumBefore is the hash of every byte before
// the trailer frame.
func (r *Reader) check(t Trailer, sumBefore []byte) error {
	if t.SHA256 != hex.EncodeToString(sumBefore) {
		return corrupt("its bytes do not match the trailer's SHA-256")
	}
	if t.Keys != r.digest.Keys || t.Bytes != r.digest.Bytes || t.Sum != hex.EncodeToString(r.digest.Sum[:]) {
		return corrupt("the keys read (%s) do not match the trailer (%d keys, %d bytes, sum %.16s)", r.digest, t.Keys, t.Bytes, t.Sum)
	}
	return nil
}

// consumed hashes the bytes it hands out (not those bufio reads ahead).
type consumed struct {
	br *bufio.Reader
	h  hash.Hash
}

func (c consumed) ReadByte() (byte, error) {
	b, err := c.br.ReadByte()
	if err == nil {
		c.h.Write([]byte{b})
	}
	return b, err
}

func (c consumed) Read(p []byte) (int, error) {
	n, err := c.br.Read(p)
	c.h.Write(p[:n])
	return n, err
}

func field(b []byte) (value, rest []byte, err error) {
	n, m := binary.Uvarint(b)
	if m <= 0 || uint64(len(b)-m) < n {
		return nil, nil, corrupt("a chunk ends inside a key or value")
	}
	return b[m : m+int(n)], b[m+int(n):], nil
}

// Trailer is the archive's trailer, once Chunks has read to the end without error.
func (r *Reader) Trailer() (Trailer, bool) {
	if r.trailer == nil {
		return Trailer{}, false
	}
	return *r.trailer, true
}

// Digest is what was read so far.
func (r *Reader) Digest() migration.Digest { return r.digest }
