package search

import (
	"math"
	"math/big"
	"regexp"
)

// A number, for range terms, is a decimal in its plain form: an optional
// minus sign, an integer part without leading zeros, and an optional
// fraction ("2020", "-3", "0.25", "1000000"). A range term whose value is
// one compares numerically and matches only tag values that are numbers
// too, so "year>=2020" finds 2020 and 10000 but not "2020-05" or "999a";
// any other range term compares bytes. Exact and prefix terms always
// compare bytes: "year=2020" does not find "2020.0".
var numberForm = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?$`)

// maxNumberLen bounds the digits a number may have.
const maxNumberLen = 64

// ParseNumber parses v as a number of the documented form.
func ParseNumber(v []byte) (*big.Rat, bool) {
	if len(v) == 0 || len(v) > maxNumberLen || !numberForm.Match(v) {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(string(v))
	return r, ok
}

// numberKey is the index's 8-byte key for a number: its nearest float64,
// with the bits arranged so that byte order is numeric order. Rounding is
// monotonic, so a range of numbers is a range of keys; numbers that round
// to the same float share a key, and the exact comparison after the scan
// tells them apart.
func numberKey(r *big.Rat) [8]byte {
	f, _ := r.Float64()
	b := math.Float64bits(f)
	if f < 0 || (f == 0 && math.Signbit(f)) {
		b = ^b
	} else {
		b |= 1 << 63
	}
	var k [8]byte
	for i := range k {
		k[i] = byte(b >> (56 - 8*i))
	}
	return k
}
