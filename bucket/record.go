package bucket

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// Record describes a bucket: who owns it, in which cluster it lives,
// whether it is private, a label for people, how many nodes keep each of
// its files, and a sequence number that orders its versions. The owner
// signs it; it is published in the cluster's DHT under RecordKey.
type Record struct {
	Bucket  ID
	Owner   PublicKey
	Nonce   [NonceSize]byte
	Cluster string
	Private bool
	Label   string
	// Replicas is the bucket's replication factor: the nodes of its
	// cluster that keep each of its files, 1 (the uploader's only) to
	// MaxReplicas.
	Replicas int
	Seq      uint64
	Sig      []byte
}

// Record limits.
const (
	MaxLabel      = 128  // bytes of a label
	MaxReplicas   = 16   // a bucket's replication factor
	maxClusterLen = 64   // bytes of a cluster name
	maxRecord     = 1024 // bytes of an encoded record
	// A record of one replica is encoded as version 1, which builds
	// before replication read; one of more as version 2, which adds the
	// factor after the label.
	recordVersion   = 1
	recordVersionV2 = 2
)

// ErrBadRecord is the error of a record that fails verification.
var ErrBadRecord = errors.New("bad bucket record")

// recordWire is a record on the wire: a CBOR array, in this order.
type recordWire struct {
	_       struct{} `cbor:",toarray"`
	Version uint
	Bucket  []byte
	Owner   []byte
	Nonce   []byte
	Cluster string
	Private bool
	Label   string
	Seq     uint64
	Sig     []byte
}

// recordWireV2 is a record of more than one replica on the wire.
type recordWireV2 struct {
	_        struct{} `cbor:",toarray"`
	Version  uint
	Bucket   []byte
	Owner    []byte
	Nonce    []byte
	Cluster  string
	Private  bool
	Label    string
	Replicas uint
	Seq      uint64
	Sig      []byte
}

// wire is r as it is encoded: a recordWire or a recordWireV2.
func (r *Record) wire(withSig bool) any {
	var sig []byte
	if withSig {
		sig = r.Sig
	}
	if r.Replicas <= 1 {
		return recordWire{Version: recordVersion, Bucket: r.Bucket[:], Owner: r.Owner[:], Nonce: r.Nonce[:],
			Cluster: r.Cluster, Private: r.Private, Label: r.Label, Seq: r.Seq, Sig: sig}
	}
	return recordWireV2{Version: recordVersionV2, Bucket: r.Bucket[:], Owner: r.Owner[:], Nonce: r.Nonce[:],
		Cluster: r.Cluster, Private: r.Private, Label: r.Label, Replicas: uint(r.Replicas), Seq: r.Seq, Sig: sig}
}

// signed is what the owner signs: the record without its signature,
// after a context string no other message of ddc starts with. The
// version inside the encoding keeps one version's bytes from reading as
// another's.
func (r *Record) signed() []byte {
	b, err := encMode.Marshal(r.wire(false))
	if err != nil {
		panic(err) // fixed shapes: a failure is a programming error
	}
	return append([]byte("ddc/bucket-record/v1\x00"), b...)
}

// NewRecord makes and signs the first record of a new bucket of owner.
func NewRecord(owner PrivateKey, cluster string, private bool, label string) (Record, error) {
	nonce, err := NewNonce()
	if err != nil {
		return Record{}, err
	}
	r := Record{Owner: owner.Public(), Nonce: nonce, Cluster: cluster, Private: private, Label: label, Replicas: 1, Seq: 1}
	r.Bucket = DeriveID(r.Owner, nonce)
	return r, r.Sign(owner)
}

// Sign checks r's fields and signs it with owner, which must be its owner.
func (r *Record) Sign(owner PrivateKey) error {
	if owner.Public() != r.Owner {
		return fmt.Errorf("%w: bucket %s is owned by %s, not %s", ErrBadRecord, r.Bucket, r.Owner, owner.Public())
	}
	if err := r.checkFields(); err != nil {
		return err
	}
	r.Sig = owner.Sign(r.signed())
	return nil
}

// Verify checks that r is well formed, that its ID derives from its owner
// and nonce, and that its owner signed it.
func (r *Record) Verify() error {
	if err := r.checkFields(); err != nil {
		return err
	}
	if !r.Owner.Verify(r.signed(), r.Sig) {
		return fmt.Errorf("%w: bucket %s: signature is not its owner's", ErrBadRecord, r.Bucket)
	}
	return nil
}

func (r *Record) checkFields() error {
	switch {
	case DeriveID(r.Owner, r.Nonce) != r.Bucket:
		return fmt.Errorf("%w: ID %s does not derive from owner %s and the nonce", ErrBadRecord, r.Bucket, r.Owner)
	case r.Seq == 0:
		return fmt.Errorf("%w: bucket %s: sequence number 0", ErrBadRecord, r.Bucket)
	case r.Replicas < 1 || r.Replicas > MaxReplicas:
		return fmt.Errorf("%w: bucket %s: %d replicas, want 1 to %d", ErrBadRecord, r.Bucket, r.Replicas, MaxReplicas)
	}
	if err := CheckCluster(r.Cluster); err != nil {
		return fmt.Errorf("%w: bucket %s: %v", ErrBadRecord, r.Bucket, err)
	}
	if err := CheckLabel(r.Label); err != nil {
		return fmt.Errorf("%w: bucket %s: %v", ErrBadRecord, r.Bucket, err)
	}
	return nil
}

// CheckCluster reports why s cannot name a cluster: 1 to 64 letters,
// digits, '-' or '_'.
func CheckCluster(s string) error {
	if len(s) == 0 || len(s) > maxClusterLen {
		return fmt.Errorf("cluster name of %d bytes, want 1 to %d", len(s), maxClusterLen)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("cluster name %.70q: use letters, digits, '-' or '_'", s)
		}
	}
	return nil
}

// CheckLabel reports why s cannot be a bucket label: at most MaxLabel
// bytes of printable UTF-8.
func CheckLabel(s string) error {
	if len(s) > MaxLabel {
		return fmt.Errorf("label of %d bytes, at most %d", len(s), MaxLabel)
	}
	if !utf8.ValidString(s) {
		return errors.New("label is not UTF-8")
	}
	for _, c := range s {
		if !unicode.IsPrint(c) {
			return fmt.Errorf("label %.70q has a control character", s)
		}
	}
	return nil
}

// Marshal encodes a signed record.
func (r *Record) Marshal() ([]byte, error) {
	if len(r.Sig) == 0 {
		return nil, fmt.Errorf("%w: bucket %s: not signed", ErrBadRecord, r.Bucket)
	}
	return encMode.Marshal(r.wire(true))
}

// ParseRecord decodes and verifies a record.
func ParseRecord(b []byte) (Record, error) {
	var fields []cbor.RawMessage // the array's length tells the version
	if err := decMode.Unmarshal(b, &fields); err != nil || len(b) > maxRecord {
		if err := decodeCanonical("bucket record", b, maxRecord, &recordWire{}); err != nil {
			return Record{}, err
		}
		return Record{}, fmt.Errorf("%w bucket record: not an array", ErrMalformed)
	}
	var r Record
	var w recordWireV2
	if len(fields) == 10 {
		if err := decodeCanonical("bucket record", b, maxRecord, &w); err != nil {
			return r, err
		}
		if w.Version != recordVersionV2 || w.Replicas < 2 || w.Replicas > MaxReplicas {
			return r, fmt.Errorf("%w bucket record: version %d of %d replicas (version 2 carries 2 to %d)", ErrMalformed, w.Version, w.Replicas, MaxReplicas)
		}
	} else {
		var v1 recordWire
		if err := decodeCanonical("bucket record", b, maxRecord, &v1); err != nil {
			return r, err
		}
		if v1.Version != recordVersion {
			return r, fmt.Errorf("%w bucket record: version %d, this ddc reads %d and %d", ErrMalformed, v1.Version, recordVersion, recordVersionV2)
		}
		w = recordWireV2{Version: v1.Version, Bucket: v1.Bucket, Owner: v1.Owner, Nonce: v1.Nonce, Cluster: v1.Cluster,
			Private: v1.Private, Label: v1.Label, Replicas: 1, Seq: v1.Seq, Sig: v1.Sig}
	}
	if len(w.Bucket) != len(r.Bucket) || len(w.Owner) != len(r.Owner) || len(w.Nonce) != len(r.Nonce) {
		return r, fmt.Errorf("%w bucket record: ID, owner or nonce of the wrong length", ErrMalformed)
	}
	copy(r.Bucket[:], w.Bucket)
	copy(r.Owner[:], w.Owner)
	copy(r.Nonce[:], w.Nonce)
	r.Cluster, r.Private, r.Label, r.Replicas, r.Seq, r.Sig = w.Cluster, w.Private, w.Label, int(w.Replicas), w.Seq, w.Sig
	return r, r.Verify()
}

// Newer reports whether a should replace b, two valid records of one
// bucket: the higher sequence number wins, and of two with the same one
// (an owner who signed twice) the greater encoding, so that every node
// keeps the same.
func Newer(a, b Record) bool {
	if a.Seq != b.Seq {
		return a.Seq > b.Seq
	}
	ea, _ := a.Marshal()
	eb, _ := b.Marshal()
	return bytes.Compare(ea, eb) > 0
}

// RecordKey is the DHT key of a bucket's record: the namespace
// RecordNamespace, then the ID's bytes.
func RecordKey(id ID) string { return "/" + RecordNamespace + "/" + string(id[:]) }

// RecordNamespace is the DHT namespace of bucket records.
const RecordNamespace = "ddcb"

// IDFromKey reads the bucket ID of a RecordKey.
func IDFromKey(key string) (ID, error) {
	var id ID
	rest, ok := strings.CutPrefix(key, "/"+RecordNamespace+"/")
	if !ok || len(rest) != len(id) {
		return id, fmt.Errorf("%w: DHT key %x is not a bucket record key", ErrBadID, key)
	}
	copy(id[:], rest)
	return id, nil
}
