package exchange

import (
	"bufio"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/ddc-project/ddc/internal/frame"
)

// request is a version 1.2.0 request.
type request struct {
	_      struct{} `cbor:",toarray"`
	Type   uint64
	ID     uint64
	CID    []byte
	Offset uint64
	Length uint64 // 0: to the end of the piece
	Bucket []byte // the bucket the requester reads in; empty: none
	Token  []byte // a grant's chain for Bucket, in its text form; empty: none
	Proof  []byte // that the requester holds the grant's key, for this holder; empty: its connection's key is the subject
	Guest  bool   // for a client of the requester (a gateway's): the requester's own key authorizes nothing
}

type responseHeader struct {
	_      struct{} `cbor:",toarray"`
	ID     uint64
	Status Status
	Size   uint64
	Via    []byte // with StatusOK: the bucket the piece was served for (32 bytes), or none: it is in no bucket
}

var (
	wireEnc cbor.EncMode
	wireDec cbor.DecMode
)

func init() {
	var err error
	if wireEnc, err = (cbor.EncOptions{Sort: cbor.SortLengthFirst}).EncMode(); err != nil {
		panic(err) // static options
	}
	wireDec, err = cbor.DecOptions{
		MaxNestedLevels:  4,
		MaxArrayElements: 16,
		MaxMapPairs:      16,
		IndefLength:      cbor.IndefLengthForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// writeFrame writes v as one length-prefixed CBOR frame.
func writeFrame(w *bufio.Writer, v any) error {
	b, err := wireEnc.Marshal(v)
	if err != nil {
		return err
	}
	return frame.Write(w, b)
}

// readFrame reads one length-prefixed frame of at most max bytes into v.
func readFrame(r *bufio.Reader, max int, v any) error {
	buf, err := frame.Read(r, max)
	if err != nil {
		return err
	}
	if err := wireDec.Unmarshal(buf, v); err != nil {
		return fmt.Errorf("frame: %w", err)
	}
	return nil
}

// noEOF is frame.NoEOF.
var noEOF = frame.NoEOF
