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
