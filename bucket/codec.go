package bucket

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// ErrMalformed is the error of bytes that are not a record or token in
// its one canonical form.
var ErrMalformed = errors.New("malformed")

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	if encMode, err = cbor.CoreDetEncOptions().EncMode(); err != nil {
		panic(err) // static options: a failure is a programming error
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		MaxNestedLevels:   4,
		MaxArrayElements:  16,
		MaxMapPairs:       16,
		UTF8:              cbor.UTF8RejectInvalid,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// decodeCanonical decodes b into v and refuses b unless it is exactly
// what encoding v gives: a signature then covers one byte string only.
func decodeCanonical(what string, b []byte, max int, v any) error {
	if len(b) > max {
		return fmt.Errorf("%w %s: %d bytes, at most %d", ErrMalformed, what, len(b), max)
	}
	if err := decMode.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w %s: %v", ErrMalformed, what, err)
	}
	again, err := encMode.Marshal(v)
	if err != nil || !bytes.Equal(again, b) {
		return fmt.Errorf("%w %s: not in canonical form", ErrMalformed, what)
	}
	return nil
}
