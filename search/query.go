package search

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/ddc-project/ddc/pieces"
)

// ErrBadQuery is wrapped by every error about a query, a term or a cursor.
var ErrBadQuery = errors.New("bad query")

// Limits of a query.
const (
	MaxTerms     = 16 // terms in one query
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Op is a term's operator.
type Op uint8

// The operators, in the order a query prefers them to drive a scan.
const (
	Eq     Op = iota + 1 // key=value: the value is exactly value
	Prefix               // key^=prefix: the value starts with prefix
	Ge                   // key>=v
	Gt                   // key>v
	Le                   // key<=v
	Lt                   // key<v
	Has                  // key: the file has a tag named key
)

var opText = map[Op]string{Eq: "=", Prefix: "^=", Ge: ">=", Gt: ">", Le: "<=", Lt: "<"}

// Range reports whether op compares order.
func (op Op) Range() bool { return op >= Ge && op <= Lt }

// Term is one condition on a tag. A file matches when one of its
// searchable tags named Key satisfies it.
type Term struct {
	Key   string
	Op    Op
	Value []byte
	// Num is set for a range term whose value is a number (see ParseNumber):
	// it compares numerically, and matches only values that are numbers.
	Num *Number
}

// Query is a conjunction of terms: a file matches when it matches each.
type Query struct {
	Terms []Term
}

// operator characters: a key in a query cannot contain them.
const opChars = "=^<>"

// ParseTerm parses one term: "key=value", "key^=prefix", "key>=v",
// "key>v", "key<=v", "key<v" or "key" alone. The key ends at the first of
// = ^ < >; the value is every byte after the operator, so it may contain
// any of them, and it may be empty.
func ParseTerm(s string) (Term, error) {
	i := strings.IndexAny(s, opChars)
	if i < 0 {
		t := Term{Key: s, Op: Has}
		return t, t.check(s)
	}
	t := Term{Key: s[:i]}
	rest := s[i:]
	switch {
	case strings.HasPrefix(rest, "^="):
		t.Op, rest = Prefix, rest[2:]
	case strings.HasPrefix(rest, ">="):
		t.Op, rest = Ge, rest[2:]
	case strings.HasPrefix(rest, "<="):
		t.Op, rest = Le, rest[2:]
	case rest[0] == '=':
		t.Op, rest = Eq, rest[1:]
	case rest[0] == '>':
		t.Op, rest = Gt, rest[1:]
	case rest[0] == '<':
		t.Op, rest = Lt, rest[1:]
	default:
		return Term{}, fmt.Errorf("%w: term %.64q: unknown operator %q (want =, ^=, >=, >, <=, < or a key alone)", ErrBadQuery, s, rest[:min(2, len(rest))])
	}
	if t.Op.Range() && rest != "" && strings.ContainsAny(rest[:1], "<>") {
		return Term{}, fmt.Errorf("%w: term %.64q: unknown operator %q", ErrBadQuery, s, s[i:i+len(opText[t.Op])+1])
	}
	if k := t.Key; k != "" && strings.ContainsAny(k[len(k)-1:], "!~*") {
		return Term{}, fmt.Errorf("%w: term %.64q: unknown operator %q", ErrBadQuery, s, k[len(k)-1:]+opText[t.Op])
	}
	t.Value = []byte(rest)
	if n, ok := ParseNumber(t.Value); ok && t.Op.Range() {
		t.Num = &n
	}
	return t, t.check(s)
}

func (t Term) check(s string) error {
	switch {
	case t.Key == "":
		return fmt.Errorf("%w: term %.64q: empty key", ErrBadQuery, s)
	case len(t.Key) > pieces.MaxTagKeyLen:
		return fmt.Errorf("%w: term %.64q…: key of %d bytes (max %d)", ErrBadQuery, s, len(t.Key), pieces.MaxTagKeyLen)
	case !utf8.ValidString(t.Key):
		return fmt.Errorf("%w: term %.64q: key is not valid UTF-8", ErrBadQuery, s)
	case len(t.Value) > pieces.MaxTagValueLen:
		return fmt.Errorf("%w: term %.64q…: value of %d bytes (max %d)", ErrBadQuery, s, len(t.Value), pieces.MaxTagValueLen)
	}
	return nil
}

// Parse parses the terms of a query; there must be at least one.
func Parse(terms []string) (Query, error) {
	if len(terms) == 0 {
		return Query{}, fmt.Errorf("%w: no terms (want KEY=VALUE, KEY^=PREFIX, KEY>=V, KEY>V, KEY<=V, KEY<V or KEY)", ErrBadQuery)
	}
	if len(terms) > MaxTerms {
		return Query{}, fmt.Errorf("%w: %d terms (max %d)", ErrBadQuery, len(terms), MaxTerms)
	}
	q := Query{Terms: make([]Term, len(terms))}
	for i, s := range terms {
		t, err := ParseTerm(s)
		if err != nil {
			return Query{}, err
		}
		q.Terms[i] = t
	}
	return q, nil
}

// String is the term as ParseTerm reads it.
func (t Term) String() string {
	if t.Op == Has {
		return t.Key
	}
	return t.Key + opText[t.Op] + string(t.Value)
}

// Strings returns the query's terms as ParseTerm reads them.
func (q Query) Strings() []string {
	out := make([]string, len(q.Terms))
	for i, t := range q.Terms {
		out[i] = t.String()
	}
	return out
}

// Match reports whether the value v of a tag named t.Key satisfies t.
func (t Term) Match(v []byte) bool {
	switch t.Op {
	case Has:
		return true
	case Eq:
		return bytes.Equal(v, t.Value)
	case Prefix:
		return bytes.HasPrefix(v, t.Value)
	}
	var c int
	if t.Num != nil {
		n, ok := ParseNumber(v)
		if !ok {
			return false
		}
		c = n.Cmp(*t.Num)
	} else {
		c = bytes.Compare(v, t.Value)
	}
	switch t.Op {
	case Ge:
		return c >= 0
	case Gt:
		return c > 0
	case Le:
		return c <= 0
	default:
		return c < 0
	}
}

// Matches reports whether the tags satisfy every term. Only searchable
// tags count: a tag put with --no-index is never found. Each term may be
// satisfied by another tag of its key, except that range terms of one kind
// (numeric or bytes) on one key make one range, which one value must fall
// in: "year>=2020 year<2030" asks for a year in the 2020s.
func (q Query) Matches(tags []pieces.Tag) bool {
	for _, t := range q.Terms {
		if !anyValue(tags, t.Key, q.together(t)) {
			return false
		}
	}
	return true
}

// together returns the terms one value must satisfy along with t.
func (q Query) together(t Term) []Term {
	if !t.Op.Range() {
		return []Term{t}
	}
	var g []Term
	for _, u := range q.Terms {
		if u.Op.Range() && u.Key == t.Key && (u.Num != nil) == (t.Num != nil) {
			g = append(g, u)
		}
	}
	return g
}

// anyValue reports whether a searchable tag named key has a value that
// satisfies all of terms.
func anyValue(tags []pieces.Tag, key string, terms []Term) bool {
	for _, g := range tags {
		if g.Searchable && g.Key == key && matchAll(terms, g.Value) {
			return true
		}
	}
	return false
}

func matchAll(terms []Term, v []byte) bool {
	for _, t := range terms {
		if !t.Match(v) {
			return false
		}
	}
	return true
}
