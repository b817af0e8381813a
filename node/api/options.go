package api

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/pieces"
)

// EncodePutOptions puts the build options a put sends into a query.
func EncodePutOptions(opt pieces.BuildOptions) url.Values {
	q := url.Values{}
	q.Set("chunk", strconv.Itoa(opt.ChunkSize))
	q.Set("inline", strconv.Itoa(opt.Inline))
	q.Set("hash", opt.Hash.Name)
	if opt.Chunker != pieces.ChunkerFixed { // silent for the default, as before
		q.Set("chunker", opt.Chunker.String())
	}
	for _, t := range opt.Tags {
		q.Add("tag", t.Key+"="+string(t.Value))
		if !t.Searchable && !slices.Contains(q["noindex"], t.Key) {
			q.Add("noindex", t.Key)
		}
	}
	return q
}

// DecodePutOptions reads a put's build options, defaults where the query
// is silent, and validates them.
func DecodePutOptions(q url.Values) (pieces.BuildOptions, error) {
	opt := pieces.DefaultBuildOptions()
	for _, f := range []struct {
		name string
		dst  *int
	}{{"chunk", &opt.ChunkSize}, {"inline", &opt.Inline}} {
		if s := q.Get(f.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return opt, usagef("%s=%q is not a number", f.name, s)
			}
			*f.dst = n
		}
	}
	if s := q.Get("hash"); s != "" {
		h, err := pieces.ParseHash(s)
		if err != nil {
			return opt, err
		}
		opt.Hash = h
	}
	if s := q.Get("chunker"); s != "" {
		c, err := pieces.ParseChunker(s)
		if err != nil {
			return opt, usagef("%v", err)
		}
		opt.Chunker = c
	}
	for _, s := range q["tag"] {
		t, err := pieces.ParseTag(s)
		if err != nil {
			return opt, err
		}
		t.Searchable = !slices.Contains(q["noindex"], t.Key)
		opt.Tags = append(opt.Tags, t)
	}
	if err := opt.Validate(); err != nil {
		return opt, usagef("%v", err)
	}
	return opt, nil
}

// HumanSize formats n bytes with a binary unit, as the CLI and the
// gateway's listings show sizes.
func HumanSize(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// putRequest reads what every write route reads first: the build
// options and the bucket, failing the request when either is bad.
func (s *Server) putRequest(w http.ResponseWriter, r *http.Request) (pieces.BuildOptions, *node.In, bool) {
	opt, err := DecodePutOptions(r.URL.Query())
	if err != nil {
		s.fail(w, err)
		return opt, nil, false
	}
	in, err := requestIn(r)
	if err != nil {
		s.fail(w, err)
		return opt, nil, false
	}
	return opt, in, true
}
