package search

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/ddc-project/ddc/internal/frame"
	"github.com/ddc-project/ddc/pieces"
)

// ProtocolID is the search protocol of a cluster. A stream carries one
// request and one response, each a uvarint length and a CBOR map. In
// version 1.1.0 a request's token is a grant's chain and comes with a
// proof, bound to the holder asked, that the requester holds its key.
func ProtocolID(cluster string) protocol.ID {
	return protocol.ID("/ddc/" + cluster + "/search/1.1.0")
}

// Message limits: a request holds at most MaxTerms terms of the largest
// key and value; a response is cut (More set) before it passes
// maxResponse, and a reader refuses one larger than that by a margin.
const (
	maxRequest    = 128 << 10
	maxResponse   = 4 << 20
	maxReadResult = maxResponse + 256<<10
	maxReason     = 512
)

// Response statuses.
const (
	StatusOK         = 0
	StatusBadRequest = 1
	StatusDenied     = 2
	StatusError      = 3
)

// Request asks a holder for a page of a bucket's files.
type Request struct {
	Bucket []byte   `cbor:"1,keyasint"`
	Token  []byte   `cbor:"2,keyasint,omitempty"`
	Terms  [][]byte `cbor:"3,keyasint"` // as ParseTerm reads them; bytes, as values need not be UTF-8
	After  []byte   `cbor:"4,keyasint,omitempty"`
	Limit  int      `cbor:"5,keyasint"`
	Proof  []byte   `cbor:"6,keyasint,omitempty"` // for the holder asked that the requester holds the token's key (bucket.Prove)
	Guest  bool     `cbor:"7,keyasint,omitempty"` // for a client of the requester: its own key authorizes nothing
}

type wireTag struct {
	Key     string `cbor:"1,keyasint"`
	Value   []byte `cbor:"2,keyasint"`
	NoIndex bool   `cbor:"3,keyasint,omitempty"`
}

type wireResult struct {
	CID  []byte    `cbor:"1,keyasint"`
	Size uint64    `cbor:"2,keyasint"`
	Tags []wireTag `cbor:"3,keyasint,omitempty"`
}

type response struct {
	Status  int          `cbor:"1,keyasint"`
	Reason  string       `cbor:"2,keyasint,omitempty"`
	Results []wireResult `cbor:"3,keyasint,omitempty"`
	More    bool         `cbor:"4,keyasint,omitempty"`
}

var decMode, _ = cbor.DecOptions{
	DupMapKey:        cbor.DupMapKeyEnforcedAPF,
	IndefLength:      cbor.IndefLengthForbidden,
	MaxNestedLevels:  8,
	MaxArrayElements: MaxLimit * pieces.MaxTags,
}.DecMode()

// Query returns the query a request carries.
func (r Request) Query() (Query, error) {
	terms := make([]string, len(r.Terms))
	for i, t := range r.Terms {
		terms[i] = string(t)
	}
	return Parse(terms)
}

// NewRequest is the request for q in bucket b.
func NewRequest(b, token []byte, q Query, after []byte, limit int) Request {
	r := Request{Bucket: b, Token: token, After: after, Limit: limit}
	for _, s := range q.Strings() {
		r.Terms = append(r.Terms, []byte(s))
	}
	return r
}

func writeMsg(w io.Writer, v any) error {
	b, err := cbor.Marshal(v)
	if err != nil {
		return err
	}
	return frame.Write(w, b)
}

func readMsg(r *bufio.Reader, max int, v any) error {
	b, err := frame.Read(r, max)
	if err != nil {
		return err
	}
	return decMode.Unmarshal(b, v)
}

func toWire(rs []Result) []wireResult {
	out := make([]wireResult, len(rs))
	for i, r := range rs {
		out[i] = wireResult{CID: r.CID.Bytes(), Size: r.Size}
		for _, t := range r.Tags {
			out[i].Tags = append(out[i].Tags, wireTag{Key: t.Key, Value: t.Value, NoIndex: !t.Searchable})
		}
	}
	return out
}

// errBadResult names what is wrong with a result a holder sent.
var errBadResult = errors.New("bad result")

func fromWire(ws []wireResult) ([]Result, error) {
	out := make([]Result, len(ws))
	for i, w := range ws {
		c, err := cid.Cast(w.CID)
		if err == nil {
			err = pieces.CheckPieceCID(c)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: results[%d]: %w", errBadResult, i, err)
		}
		if c.Type() != pieces.CodecDagCBOR {
			return nil, fmt.Errorf("%w: results[%d]: %s is not a descriptor", errBadResult, i, c)
		}
		p := pieces.Piece{}
		for _, t := range w.Tags {
			p.Tags = append(p.Tags, pieces.Tag{Key: t.Key, Value: t.Value, Searchable: !t.NoIndex})
		}
		if len(p.Tags) > pieces.MaxTags {
			return nil, fmt.Errorf("%w: results[%d] %s: %d tags (max %d)", errBadResult, i, c, len(p.Tags), pieces.MaxTags)
		}
		for j, t := range p.Tags {
			if err := t.Validate(); err != nil {
				return nil, fmt.Errorf("%w: results[%d] %s: tags[%d]: %w", errBadResult, i, c, j, err)
			}
		}
		out[i] = Result{CID: c, Size: w.Size, Tags: p.Tags}
	}
	return out, nil
}
