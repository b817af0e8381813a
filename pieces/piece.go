package pieces

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
)

// Piece is a decoded descriptor: a file or a sub-tree of one, or a
// directory (see dir.go).
type Piece struct {
	Kind  Kind   // what the piece is; the zero value is a file
	Data  []byte // inline content, before the links' content
	Links []Link // content links in order, or a directory's entries
	Tags  []Tag  // metadata; only a file's or directory's root carries tags
}

// Link points at a data piece (a chunk) or a sub-descriptor. In a file it
// stands for the bytes [Offset, Offset+Size) of what it points at, so a
// link may reference a byte range of another file or chunk (a range link)
// as well as a whole one. In a directory it is an entry: Name, the entry's
// root, its size and metadata tags.
type Link struct {
	CID    cid.Cid
	Size   uint64 // content bytes under the link
	Offset uint64 // where they start in the target's content
	Name   string // an entry's name in a directory; optional in a file
	Tags   []Tag  // an entry's metadata (mode, mtime), directories only
}

// Tag is a key/value pair attached to a file.
type Tag struct {
	Key        string
	Value      []byte
	Searchable bool // indexed for search; true unless the writer opts out
}

// ContentSize is the number of file bytes the descriptor covers.
func (p *Piece) ContentSize() uint64 {
	n := uint64(len(p.Data))
	for _, l := range p.Links {
		n += l.Size
	}
	return n
}

// Wire form. Field order does not matter: the encoder sorts keys
// length-first then bytewise, as DAG-CBOR requires.
type wirePiece struct {
	Kind  string     `cbor:"kind,omitempty"`
	Data  []byte     `cbor:"data,omitempty"`
	Links []wireLink `cbor:"links,omitempty"`
	Tags  []wireTag  `cbor:"tags,omitempty"`
}

type wireLink struct {
	CID    cidTag    `cbor:"cid"`
	Size   uint64    `cbor:"size"`
	Offset uint64    `cbor:"offset,omitempty"`
	Name   string    `cbor:"name,omitempty"`
	Tags   []wireTag `cbor:"tags,omitempty"`
}

type wireTag struct {
	Key   string    `cbor:"key"`
	Value *tagValue `cbor:"value"`
	// Searchable is present only when false: true is the default, and a
	// canonical encoding omits defaults.
	Searchable *bool `cbor:"searchable,omitempty"`
}

// tagValue is a tag's value on the wire: a CBOR text string when its bytes
// are valid UTF-8, so IPLD tools (DAG-JSON, `ipfs dag get`) show it as
// text, and a byte string otherwise. Exactly one form is right for a given
// value, so one file still has one CID.
type tagValue struct {
	b     []byte
	bytes bool // decoded from a byte string
}

// MarshalCBOR implements cbor.Marshaler.
func (v tagValue) MarshalCBOR() ([]byte, error) {
	if utf8.Valid(v.b) {
		return encMode.Marshal(string(v.b))
	}
	return encMode.Marshal(v.b)
}

// UnmarshalCBOR implements cbor.Unmarshaler. It accepts either string
// type; Decode then refuses a byte string that should have been text.
func (v *tagValue) UnmarshalCBOR(data []byte) error {
	if len(data) > 0 && data[0]>>5 == 3 { // major type 3: text string
		var s string
		if err := decMode.Unmarshal(data, &s); err != nil {
			return err
		}
		v.b = []byte(s)
		return nil
	}
	var b []byte
	if err := decMode.Unmarshal(data, &b); err != nil {
		return fmt.Errorf("tag value: want a text or byte string: %w", err)
	}
	v.b, v.bytes = b, true
	if v.b == nil {
		v.b = []byte{}
	}
	return nil
}

// cidTag is a CID encoded as DAG-CBOR does: tag 42 around a byte string of
// 0x00 (the identity multibase prefix) followed by the binary CID.
type cidTag struct{ c cid.Cid }

const cidTagNumber = 42

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
	falseV  = false
)

func init() {
	var err error
	encMode, err = cbor.EncOptions{
		Sort:        cbor.SortLengthFirst,
		IndefLength: cbor.IndefLengthForbidden,
		String:      cbor.StringToTextString,
	}.EncMode()
	if err != nil {
		panic(err) // static options: a failure is a programming error
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:           cbor.DupMapKeyEnforcedAPF,
		IndefLength:         cbor.IndefLengthForbidden,
		MaxNestedLevels:     8,
		MaxArrayElements:    MaxLinks,
		MaxMapPairs:         16, // the library minimum; our maps have 5 keys at most
		ExtraReturnErrors:   cbor.ExtraDecErrorUnknownField,
		UTF8:                cbor.UTF8RejectInvalid,
		FieldNameMatching:   cbor.FieldNameMatchingCaseSensitive,
		FieldNameByteString: cbor.FieldNameByteStringForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// MarshalCBOR implements cbor.Marshaler.
func (t cidTag) MarshalCBOR() ([]byte, error) {
	if !t.c.Defined() {
		return nil, errors.New("link without a CID")
	}
	b := t.c.Bytes()
	content := make([]byte, 1+len(b))
	copy(content[1:], b)
	return encMode.Marshal(cbor.Tag{Number: cidTagNumber, Content: content})
}

// UnmarshalCBOR implements cbor.Unmarshaler.
func (t *cidTag) UnmarshalCBOR(data []byte) error {
	var raw cbor.RawTag
	if err := decMode.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("link cid: want tag 42: %w", err)
	}
	if raw.Number != cidTagNumber {
		return fmt.Errorf("link cid: tag %d, want 42", raw.Number)
	}
	var content []byte
	if err := decMode.Unmarshal(raw.Content, &content); err != nil {
		return fmt.Errorf("link cid: tag 42 content: %w", err)
	}
	if len(content) < 2 || content[0] != 0 {
		return errors.New("link cid: tag 42 content must be 0x00 followed by a binary CID")
	}
	c, err := cid.Cast(content[1:])
	if err != nil {
		return fmt.Errorf("link cid: %w", err)
	}
	if err := CheckPieceCID(c); err != nil {
		return fmt.Errorf("link cid: %w", err)
	}
	t.c = c
	return nil
}

// Validate checks the limits and values a descriptor must respect.
func (p *Piece) Validate() error {
	if len(p.Data) > MaxPieceSize {
		return fmt.Errorf("%w: inline data of %d bytes (max %d)", ErrTooLarge, len(p.Data), MaxPieceSize)
	}
	if len(p.Links) > MaxLinks {
		return fmt.Errorf("%w: %d links (max %d)", ErrTooLarge, len(p.Links), MaxLinks)
	}
	if len(p.Tags) > MaxTags {
		return fmt.Errorf("%w: %d tags (max %d)", ErrTooLarge, len(p.Tags), MaxTags)
	}
	for i, t := range p.Tags {
		if err := t.Validate(); err != nil {
			return fmt.Errorf("tags[%d]: %w", i, err)
		}
	}
	if !p.Kind.known() {
		return fmt.Errorf("unknown kind %.32q", p.Kind)
	}
	if p.Kind != KindFile {
		return p.validateDir()
	}
	total := uint64(len(p.Data))
	for i, l := range p.Links {
		if err := CheckPieceCID(l.CID); err != nil {
			return fmt.Errorf("links[%d]: %w", i, err)
		}
		if l.Size == 0 {
			return fmt.Errorf("links[%d] %s: size 0 (a link must cover content)", i, l.CID)
		}
		if len(l.Tags) > 0 {
			return fmt.Errorf("links[%d] %s: tags on a file's link (only directory entries carry them)", i, l.CID)
		}
		if l.Offset+l.Size < l.Size {
			return fmt.Errorf("links[%d] %s: range end overflows 64 bits", i, l.CID)
		}
		if l.CID.Type() == CodecRaw && l.Offset+l.Size > MaxPieceSize {
			return fmt.Errorf("%w: links[%d] %s: range ends at byte %d of a chunk (max %d)", ErrTooLarge, i, l.CID, l.Offset+l.Size, MaxPieceSize)
		}
		if len(l.Name) > MaxLinkNameLen || !utf8.ValidString(l.Name) {
			return fmt.Errorf("links[%d]: name must be valid UTF-8 of at most %d bytes", i, MaxLinkNameLen)
		}
		if total+l.Size < total || total+l.Size > math.MaxInt64 {
			return fmt.Errorf("links[%d]: content size passes %d bytes, the most a file may hold", i, int64(math.MaxInt64))
		}
		total += l.Size
	}
	return nil
}

// Validate checks a tag's key and value against the limits.
func (t Tag) Validate() error {
	switch {
	case t.Key == "":
		return fmt.Errorf("%w: empty key", ErrInvalidTag)
	case len(t.Key) > MaxTagKeyLen:
		return fmt.Errorf("%w: key of %d bytes (max %d)", ErrInvalidTag, len(t.Key), MaxTagKeyLen)
	case !utf8.ValidString(t.Key):
		return fmt.Errorf("%w: key is not valid UTF-8", ErrInvalidTag)
	case len(t.Value) > MaxTagValueLen:
		return fmt.Errorf("%w: value of key %q has %d bytes (max %d)", ErrInvalidTag, t.Key, len(t.Value), MaxTagValueLen)
	}
	return nil
}

// Encode returns the canonical DAG-CBOR bytes of p.
func (p *Piece) Encode() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	w := wirePiece{Kind: string(p.Kind), Data: p.Data, Tags: wireTags(p.Tags)}
	if len(p.Links) > 0 {
		w.Links = make([]wireLink, len(p.Links))
		for i, l := range p.Links {
			w.Links[i] = wireLink{CID: cidTag{l.CID}, Size: l.Size, Offset: l.Offset, Name: l.Name, Tags: wireTags(l.Tags)}
		}
	}
	b, err := encMode.Marshal(&w)
	if err != nil {
		return nil, fmt.Errorf("encode piece: %w", err)
	}
	if len(b) > MaxPieceSize {
		return nil, fmt.Errorf("%w: descriptor encodes to %d bytes (max %d)", ErrTooLarge, len(b), MaxPieceSize)
	}
	return b, nil
}

// EncodeCID encodes p and returns its bytes and its CID under h.
func (p *Piece) EncodeCID(h Hash) ([]byte, cid.Cid, error) {
	b, err := p.Encode()
	if err != nil {
		return nil, cid.Undef, err
	}
	return b, h.Sum(CodecDagCBOR, b), nil
}

// Decode parses descriptor bytes strictly. c names the piece in errors and
// may be cid.Undef. Decode does not verify b against c; see Verify.
func Decode(c cid.Cid, b []byte) (*Piece, error) {
	if len(b) > MaxPieceSize {
		return nil, fmt.Errorf("%w: descriptor %s of %d bytes (max %d)", ErrTooLarge, c, len(b), MaxPieceSize)
	}
	p, err := decodeWire(c, b)
	if err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, malformed(c, "%v", err)
	}
	// One file, one CID: only the canonical encoding of a value is accepted.
	// Re-encoding catches non-minimal integers, unsorted keys, default
	// values written out and empty fields that should be omitted.
	again, err := p.Encode()
	if err != nil {
		return nil, malformed(c, "%v", err)
	}
	if !bytes.Equal(again, b) {
		return nil, malformed(c, "not canonical DAG-CBOR (differs from the canonical encoding at byte %d)", firstDiff(again, b))
	}
	return p, nil
}

// DecodeChecked parses descriptor bytes that Decode accepted before and
// that are unchanged since, as their hash matching c proves: it skips the
// limits and the canonical re-encoding Decode checks, which cost as much
// as the parse. The tag index reads descriptors so.
func DecodeChecked(c cid.Cid, b []byte) (*Piece, error) {
	if err := Verify(c, b); err != nil {
		return nil, err
	}
	return decodeWire(c, b)
}

func decodeWire(c cid.Cid, b []byte) (*Piece, error) {
	var w wirePiece
	if err := decMode.Unmarshal(b, &w); err != nil {
		return nil, malformed(c, "%v", err)
	}
	p := &Piece{Kind: Kind(w.Kind), Data: w.Data}
	if !p.Kind.known() {
		return nil, malformed(c, "unknown kind %.32q (want none, %q or %q)", w.Kind, KindDir, KindDirIndex)
	}
	var err error
	if p.Tags, err = fromWireTags(c, "tags", w.Tags); err != nil {
		return nil, err
	}
	if len(w.Links) > 0 {
		p.Links = make([]Link, len(w.Links))
		for i, l := range w.Links {
			if !l.CID.c.Defined() {
				return nil, malformed(c, "links[%d]: missing cid", i)
			}
			p.Links[i] = Link{CID: l.CID.c, Size: l.Size, Offset: l.Offset, Name: l.Name}
			if p.Links[i].Tags, err = fromWireTags(c, fmt.Sprintf("links[%d].tags", i), l.Tags); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

func wireTags(tags []Tag) []wireTag {
	if len(tags) == 0 {
		return nil
	}
	w := make([]wireTag, len(tags))
	for i, t := range tags {
		w[i] = wireTag{Key: t.Key, Value: &tagValue{b: t.Value}}
		if !t.Searchable {
			w[i].Searchable = &falseV
		}
	}
	return w
}

func fromWireTags(c cid.Cid, field string, w []wireTag) ([]Tag, error) {
	if len(w) == 0 {
		return nil, nil
	}
	tags := make([]Tag, len(w))
	for i, t := range w {
		if t.Value == nil {
			return nil, malformed(c, "%s[%d]: missing value", field, i)
		}
		if t.Value.bytes && utf8.Valid(t.Value.b) {
			return nil, malformed(c, "%s[%d] (key %.64q): value is valid UTF-8, so it must be a CBOR text string, not a byte string", field, i, t.Key)
		}
		tags[i] = Tag{Key: t.Key, Value: t.Value.b, Searchable: t.Searchable == nil || *t.Searchable}
	}
	return tags, nil
}

func firstDiff(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
