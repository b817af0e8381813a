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
		return Tag{}, fmt.Errorf("%w %q: want KEY=VALUE", ErrInvalidTag, s)
	}
	t := Tag{Key: k, Value: []byte(v), Searchable: true}
	if err := t.Validate(); err != nil {
		return Tag{}, fmt.Errorf("%q: %w", s, err)
	}
	return t, nil
}
