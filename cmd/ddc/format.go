package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ddc-project/ddc/node/api"
)

// humanSize formats n bytes with a binary unit.
func humanSize(n uint64) string { return api.HumanSize(n) }

// parseSize reads a byte count: a plain number or one with a unit suffix
// (K, M, G: powers of 1024; KiB, MiB, GiB are accepted too).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	// Units are binary and case-insensitive: 1k, 1K, 1KB, 1KiB are 1024.
	lower := strings.ToLower(t)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1}} {
		if strings.HasSuffix(lower, u.suffix) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %.40q: want a non-negative number of bytes, optionally with K, M or G (binary: 1K = 1024; KB, KiB and lower case work too)", s)
	}
	return n * mult, nil
}

// printableKey shows a tag key as it is when it is printable, and quoted
// with escapes otherwise: keys come from other peers and must not move
// the terminal's cursor or forge lines.
func printableKey(k string) string {
	if utf8.ValidString(k) && strings.IndexFunc(k, func(r rune) bool { return !unicode.IsPrint(r) || r == '=' || r == '"' }) < 0 && k != "" {
		return k
	}
	return strconv.Quote(k)
}

// printableValue shows a tag value as text when it is printable UTF-8 and
// as hex otherwise.
func printableValue(v []byte) string {
	if utf8.Valid(v) && strings.IndexFunc(string(v), func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return string(v)
	}
	return fmt.Sprintf("0x%x", v)
}
