package pieces

import (
	"fmt"
	"strings"
)

// ParseTag parses "KEY=VALUE" as given on a command line. The value may be
// empty and may contain '='; the key may not be empty.
func ParseTag(s string) (Tag, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return Tag{}, fmt.Errorf("%w %.64q (%d bytes): want KEY=VALUE", ErrInvalidTag, s, len(s))
	}
	t := Tag{Key: k, Value: []byte(v), Searchable: true}
	if err := t.Validate(); err != nil {
		return Tag{}, fmt.Errorf("%.64q (%d bytes): %w", s, len(s), err)
	}
	return t, nil
}

// Tags with a meaning ddc knows: put --path sets them, get --path and the
// gateway read them. The timestamp is UTC at nanoseconds in a fixed width
// (TimestampLayout), so that byte order is time order: the newest file of
// a path sorts last, and timestamp>=2026-11 finds what was put since.
const (
	TagFilePath     = "file-path"
	TagContentType  = "content-type"
	TagTimestamp    = "timestamp"
	TimestampLayout = "2006-01-02T15:04:05.000000000Z"
)

// Value returns the value of the first tag with key k.
func (p *Piece) Value(k string) (string, bool) {
	for _, t := range p.Tags {
		if t.Key == k {
			return string(t.Value), true
		}
	}
	return "", false
}
