package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ddc-project/ddc/pieces"
)

func TestPutOptionsRoundTrip(t *testing.T) {
	opt := pieces.DefaultBuildOptions()
	opt.ChunkSize, opt.Inline = 4096, 0
	opt.Hash, _ = pieces.ParseHash("blake3")
	opt.Tags = []pieces.Tag{{Key: "title", Value: []byte("a=b c"), Searchable: true}}
	opt.Chunker = pieces.ChunkerCDC
	got, err := DecodePutOptions(EncodePutOptions(opt))
	if err != nil {
		t.Fatal(err)
	}
	if got.ChunkSize != 4096 || got.Inline != 0 || got.Hash.Name != "blake3" || len(got.Tags) != 1 || string(got.Tags[0].Value) != "a=b c" || got.Chunker != pieces.ChunkerCDC {
		t.Fatalf("round trip: %+v", got)
	}
	if q := EncodePutOptions(pieces.DefaultBuildOptions()); q.Has("chunker") {
		t.Errorf("the default chunker is sent: %s", q.Encode())
	}
	for _, q := range []string{"chunk=x", "chunk=7", "inline=-1", "hash=md5", "tag=novalue", "chunker=rabin"} {
		v, _ := url.ParseQuery(q)
		if _, err := DecodePutOptions(v); !errors.Is(err, ErrUsage) && !errors.Is(err, pieces.ErrUnsupportedHash) && !errors.Is(err, pieces.ErrInvalidTag) {
			t.Errorf("%s: %v", q, err)
		}
	}
}

func TestErrorCodesMapBack(t *testing.T) {
	for _, err := range []error{
		&pieces.NotFoundError{},
		&pieces.CorruptError{Reason: "x"},
		usagef("bad"),
		fmt.Errorf("wrapped: %w", pieces.ErrInvalidCID),
	} {
		code, _ := classify(err)
		back := &Error{Code: code, Message: err.Error()}
		for _, sentinel := range []error{pieces.ErrNotFound, pieces.ErrCorrupt} {
			if errors.Is(err, sentinel) != errors.Is(back, sentinel) {
				t.Errorf("%v: code %s loses %v", err, code, sentinel)
			}
		}
	}
}

// A cat whose body stops early, or ends with an error trailer, is an error
// at the end of the body, never a short file taken for a whole one.
func TestCatReportsTrailers(t *testing.T) {
	c, _ := pieces.ParseCID("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	for _, tc := range []struct {
		name    string
		trailer map[string]string
		body    string
		says    string
	}{
		{"error", map[string]string{"X-Ddc-Error": "piece x not found", "X-Ddc-Error-Code": CodeNotFound}, "abc", "not found"},
		{"no done", nil, "abc", "ended the response"},
		{"short", map[string]string{"X-Ddc-Done": "true"}, "ab", "ended the response"},
		{"whole", map[string]string{"X-Ddc-Done": "true"}, "abc", ""},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Ddc-Size", "3")
			w.Header().Set("X-Ddc-Length", "3")
			w.Header().Set("X-Ddc-Download", "1")
			w.Header().Set("Trailer", "X-Ddc-Error, X-Ddc-Error-Code, X-Ddc-Done")
			io.WriteString(w, tc.body)
			for k, v := range tc.trailer {
				w.Header().Set(k, v)
			}
		}))
		cl := New(strings.TrimPrefix(srv.URL, "http://"))
		cat, err := cl.Cat(context.Background(), c, 0, -1, false)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadAll(cat)
		cat.Close()
		srv.Close()
		switch {
		case tc.says == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.says != "" && (err == nil || !strings.Contains(err.Error(), tc.says)):
			t.Errorf("%s: %v, want an error mentioning %q", tc.name, err, tc.says)
		}
		if tc.name == "error" && !errors.Is(err, pieces.ErrNotFound) {
			t.Errorf("error trailer does not map to not found: %v", err)
		}
	}
}
