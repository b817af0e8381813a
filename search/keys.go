package search

import (
	"bytes"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
)

// The tag index's entries, after the store's own prefix (kind and
// bucket). A value entry is
//
//	esc(key) 00 01 esc(value) 00 01 CID
//
// and a number entry, for a value that is a number, is
//
//	esc(key) 00 01 numberKey(value) CID
//
// esc writes a 0x00 byte as 00 FF, so 00 01 ends a field and byte order of
// entries is the order of (key, value, CID): an exact value, a prefix and a
// range of values are each one contiguous range of entries. What follows a
// key's part is an entry's sort key: results are ordered by it, and a
// cursor is the sort key of the last result given.

var term = []byte{0, 1}

func appendEsc(dst, b []byte) []byte {
	for {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			return append(dst, b...)
		}
		dst = append(append(dst, b[:i]...), 0, 0xff)
		b = b[i+1:]
	}
}

// KeyPrefix is the part of an entry that names tag key k.
func KeyPrefix(k string) []byte {
	return append(appendEsc(nil, []byte(k)), term...)
}

// Entries returns the index entries of a file's tags: a value entry for
// each searchable tag, and a number entry for each whose value is a
// number. Duplicates (a key given twice with one value) come once.
func Entries(tags []pieces.Tag, c cid.Cid) (values, numbers [][]byte) {
	cb := c.Bytes()
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		if !t.Searchable {
			continue
		}
		v := append(appendEsc(KeyPrefix(t.Key), t.Value), term...)
		v = append(v, cb...)
		if seen[string(v)] {
			continue
		}
		seen[string(v)] = true
		values = append(values, v)
		if n, ok := ParseNumber(t.Value); ok {
			k := numberKey(n)
			numbers = append(numbers, append(append(KeyPrefix(t.Key), k[:]...), cb...))
		}
	}
	return values, numbers
}

// Plan is how the store scans its index for a query: the entries of one
// kind whose key part is Key, from Start (inclusive) to End (exclusive),
// both relative to Key; End nil means to the end of Key's entries.
type Plan struct {
	Numeric    bool
	Key        []byte // KeyPrefix of the driving term's key
	Start, End []byte
	drive      func(v []byte) bool
	key        string
}

// Plan returns the scan for q that resumes after the sort key after (nil
// for the first page).
func (q Query) Plan(after []byte) Plan {
	d := q.driving()
	p := Plan{Key: KeyPrefix(d[0].Key), key: d[0].Key}
	first := d[0]
	switch first.Op {
	case Eq:
		p.Start = append(appendEsc(nil, first.Value), term...)
		p.End = prefixEnd(p.Start)
	case Prefix:
		p.Start = appendEsc(nil, first.Value)
		p.End = prefixEnd(p.Start)
	case Has:
	default:
		p.Numeric = first.Num != nil
		for _, t := range d {
			lo, hi := t.bounds()
			if lo != nil && bytes.Compare(lo, p.Start) > 0 {
				p.Start = lo
			}
			if hi != nil && (p.End == nil || bytes.Compare(hi, p.End) < 0) {
				p.End = hi
			}
		}
	}
	p.drive = func(v []byte) bool { return matchAll(d, v) }
	if after != nil {
		next := append(append([]byte(nil), after...), 0)
		if bytes.Compare(next, p.Start) > 0 {
			p.Start = next
		}
	}
	return p
}

// driving returns the terms that drive the scan: the first exact term,
// else the first prefix term, else the first range term with every other
// range term on its key of the same kind (numeric or bytes), else the
// first has-tag term.
func (q Query) driving() []Term {
	for _, op := range []Op{Eq, Prefix} {
		for _, t := range q.Terms {
			if t.Op == op {
				return []Term{t}
			}
		}
	}
	for _, t := range q.Terms {
		if t.Op.Range() {
			return q.together(t)
		}
	}
	return []Term{q.Terms[0]} // only has-tag terms are left
}

// bounds returns a range term's scan bounds relative to its key part: lo
// inclusive, hi exclusive, nil for none.
func (t Term) bounds() (lo, hi []byte) {
	if t.Num != nil {
		k := numberKey(*t.Num)
		switch t.Op {
		case Ge, Gt: // the float of a greater number may equal k
			return k[:], nil
		default:
			return nil, prefixEnd(k[:])
		}
	}
	v := appendEsc(nil, t.Value)
	switch t.Op {
	case Ge:
		return append(v, 0, 1), nil
	case Gt: // past the entries of v itself, before those of v+"\x00"
		return append(v, 0, 2), nil
	case Le:
		return nil, append(v, 0, 2)
	default:
		return nil, append(v, 0, 1)
	}
}

// prefixEnd is the first key after every key starting with p, or nil.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Split parses the part of an entry after the plan's key into its sort key
// and CID.
func (p Plan) Split(rest []byte) (sortKey []byte, c cid.Cid, err error) {
	n := 8
	if !p.Numeric {
		n = -1
		for i := 0; i+1 < len(rest); i++ {
			if rest[i] == 0 {
				if rest[i+1] == 1 {
					n = i + 2
					break
				}
				i++ // 00 FF: an escaped zero
			}
		}
	}
	if n < 0 || n > len(rest) {
		return nil, cid.Undef, fmt.Errorf("tag index entry %x has no value", rest)
	}
	c, err = cid.Cast(rest[n:])
	if err != nil {
		return nil, cid.Undef, fmt.Errorf("tag index entry %x: %w", rest, err)
	}
	return rest, c, nil
}

// SortKey is the sort key of a file for q: from the smallest value of the
// driving key that satisfies the driving terms. ok is false when no value
// does (the file does not match q).
func (q Query) SortKey(tags []pieces.Tag, c cid.Cid) (key []byte, ok bool) {
	return q.Plan(nil).sortKey(tags, c)
}

func (p Plan) sortKey(tags []pieces.Tag, c cid.Cid) ([]byte, bool) {
	var best []byte
	for _, t := range tags {
		if !t.Searchable || t.Key != p.key || !p.drive(t.Value) {
			continue
		}
		var k []byte
		if p.Numeric {
			n, ok := ParseNumber(t.Value)
			if !ok {
				continue
			}
			nk := numberKey(n)
			k = nk[:]
		} else {
			k = append(appendEsc(nil, t.Value), term...)
		}
		if best == nil || bytes.Compare(k, best) < 0 {
			best = k
		}
	}
	if best == nil {
		return nil, false
	}
	return append(best, c.Bytes()...), true
}

// Emit reports whether the entry with sort key at, of a file with tags
// and CID c, yields the file as a result of q: when the file matches q and
// this entry is the first of the file's in the scan, so that each file
// comes once however many of its values the range holds.
func (p Plan) Emit(q Query, at []byte, tags []pieces.Tag, c cid.Cid) bool {
	if !q.Matches(tags) {
		return false
	}
	k, ok := p.sortKey(tags, c)
	return ok && bytes.Equal(k, at)
}
