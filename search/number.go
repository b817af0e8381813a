package search

import (
	"math"
	"math/big"
	"strconv"
)

// A number, for range terms, is a decimal in its plain form: an optional
// minus sign, an integer part without leading zeros, and an optional
// fraction ("2020", "-3", "0.25", "1000000"). A range term whose value is
// one compares numerically and matches only tag values that are numbers
// too, so "year>=2020" finds 2020 and 10000 but not "2020-05" or "999a";
// any other range term compares bytes. Exact and prefix terms always
// compare bytes: "year=2020" does not find "2020.0".
func isNumber(v []byte) bool {
	i := 0
	if len(v) > 0 && v[0] == '-' {
		i++
	}
	start := i
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	if i == start || (v[start] == '0' && i-start > 1) {
		return false // no integer part, or a leading zero
	}
	if i < len(v) && v[i] == '.' {
		i++
		frac := i
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
		if i == frac {
			return false
		}
	}
	return i == len(v)
}

// maxNumberLen bounds the digits a number may have.
const maxNumberLen = 64

// Number is a parsed number: an int64 when it is an integer that fits
// (most are, and they compare without allocating), else a big.Rat.
type Number struct {
	i   int64
	rat *big.Rat
}

// ParseNumber parses v as a number of the documented form.
func ParseNumber(v []byte) (Number, bool) {
	if len(v) == 0 || len(v) > maxNumberLen || !isNumber(v) {
		return Number{}, false
	}
	if len(v) <= 18 {
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return Number{i: i}, true
		}
	}
	r, ok := new(big.Rat).SetString(string(v))
	return Number{rat: r}, ok
}

func (n Number) bigRat() *big.Rat {
	if n.rat != nil {
		return n.rat
	}
	return new(big.Rat).SetInt64(n.i)
}

// Cmp compares n and m as -1, 0 or +1.
func (n Number) Cmp(m Number) int {
	if n.rat == nil && m.rat == nil {
		switch {
		case n.i < m.i:
			return -1
		case n.i > m.i:
			return 1
		}
		return 0
	}
	return n.bigRat().Cmp(m.bigRat())
}

// numberKey is the index's 8-byte key for a number: its nearest float64,
// with the bits arranged so that byte order is numeric order. Rounding is
// monotonic, so a range of numbers is a range of keys; numbers that round
// to the same float share a key, and the exact comparison after the scan
// tells them apart.
func numberKey(n Number) [8]byte {
	f := float64(n.i) // rounds to nearest, as Rat.Float64 does
	if n.rat != nil {
		f, _ = n.rat.Float64()
	}
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
