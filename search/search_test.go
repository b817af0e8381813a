package search_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/search"
)

func TestParseTerm(t *testing.T) {
	cases := []struct {
		in    string
		key   string
		op    search.Op
		value string
		num   bool
	}{
		{"owner=alice", "owner", search.Eq, "alice", false},
		{"f=a=b>c", "f", search.Eq, "a=b>c", false},
		{"k=", "k", search.Eq, "", false},
		{"path^=/talks/", "path", search.Prefix, "/talks/", false},
		{"year>=2020", "year", search.Ge, "2020", true},
		{"year>2020.5", "year", search.Gt, "2020.5", true},
		{"size<=-3", "size", search.Le, "-3", true},
		{"d<2020-01", "d", search.Lt, "2020-01", false},
		{"v>=007", "v", search.Ge, "007", false}, // leading zeros: bytes
		{"has", "has", search.Has, "", false},
		{"x y", "x y", search.Has, "", false},
	}
	for _, tc := range cases {
		got, err := search.ParseTerm(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got.Key != tc.key || got.Op != tc.op || string(got.Value) != tc.value || (got.Num != nil) != tc.num {
			t.Errorf("%q: got %+v", tc.in, got)
		}
		if got.String() != tc.in {
			t.Errorf("%q prints as %q", tc.in, got.String())
		}
	}
}

func TestParseRejects(t *testing.T) {
	cases := []struct{ in, want string }{
		{"=v", "empty key"},
		{">=2", "empty key"},
		{"k^v", `unknown operator "^v"`},
		{"k!=v", `unknown operator "!="`},
		{"k~=v", `unknown operator "~="`},
		{"k<>v", `unknown operator "<>"`},
		{"k>>v", `unknown operator ">>"`},
		{strings.Repeat("k", pieces.MaxTagKeyLen+1) + "=v", "key of 257 bytes"},
		{"k=" + strings.Repeat("v", pieces.MaxTagValueLen+1), "value of 4097 bytes"},
		{"\xff=v", "not valid UTF-8"},
	}
	for _, tc := range cases {
		_, err := search.ParseTerm(tc.in)
		if !errors.Is(err, search.ErrBadQuery) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.40q: error %v, want one saying %q", tc.in, err, tc.want)
		}
	}
	if _, err := search.Parse(nil); !errors.Is(err, search.ErrBadQuery) {
		t.Errorf("no terms: %v", err)
	}
	if _, err := search.Parse(make([]string, search.MaxTerms+1)); !errors.Is(err, search.ErrBadQuery) {
		t.Errorf("too many terms: %v", err)
	}
}

func TestNumbers(t *testing.T) {
	for s, ok := range map[string]bool{"0": true, "-0": true, "2020": true, "0.25": true, "-12.5": true,
		"": false, "007": false, "1e3": false, "1.": false, ".5": false, "+1": false, "1,000": false, " 1": false} {
		if _, got := search.ParseNumber([]byte(s)); got != ok {
			t.Errorf("ParseNumber(%q) = %v", s, got)
		}
	}
	q, _ := search.Parse([]string{"n>9"})
	for v, want := range map[string]bool{"10": true, "9": false, "9.01": true, "-100": false, "99999999999999999999": true, "x": false} {
		if got := q.Matches([]pieces.Tag{{Key: "n", Value: []byte(v), Searchable: true}}); got != want {
			t.Errorf("n>9 on %q: %v", v, got)
		}
	}
}

func TestCursor(t *testing.T) {
	q, _ := search.Parse([]string{"k=v"})
	other, _ := search.Parse([]string{"k=w"})
	after := []byte("sort\x00key")
	c := search.EncodeCursor("ddcbX", q, after)
	got, err := search.DecodeCursor("ddcbX", q, c)
	if err != nil || string(got) != string(after) {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	for name, try := range map[string]func() error{
		"another query":  func() error { _, err := search.DecodeCursor("ddcbX", other, c); return err },
		"another bucket": func() error { _, err := search.DecodeCursor("ddcbY", q, c); return err },
		"garbage":        func() error { _, err := search.DecodeCursor("ddcbX", q, "not a cursor!"); return err },
		"truncated":      func() error { _, err := search.DecodeCursor("ddcbX", q, c[:5]); return err },
		"too long": func() error {
			_, err := search.DecodeCursor("ddcbX", q, strings.Repeat("A", search.MaxCursor+1))
			return err
		},
	} {
		if err := try(); !errors.Is(err, search.ErrBadQuery) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got, err := search.DecodeCursor("ddcbX", q, ""); got != nil || err != nil {
		t.Errorf("empty cursor: %q, %v", got, err)
	}
}

func result(name string, kv ...string) search.Result {
	p := pieces.Piece{Data: []byte(name)}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		p.Tags = append(p.Tags, pieces.Tag{Key: k, Value: []byte(v), Searchable: true})
	}
	_, c, _ := p.EncodeCID(pieces.SHA2_256)
	return search.Result{CID: c, Size: uint64(len(name)), Tags: p.Tags}
}

func names(rs []search.Result, all map[cid.Cid]string) []string {
	var out []string
	for _, r := range rs {
		out = append(out, all[r.CID])
	}
	return out
}

func TestMerge(t *testing.T) {
	q, _ := search.Parse([]string{"n>=0"})
	r := map[string]search.Result{}
	all := map[cid.Cid]string{}
	for i, n := range []string{"1", "2", "3", "4", "5"} {
		name := string(rune('a' + i))
		r[name] = result(name, "n="+n)
		all[r[name].CID] = name
	}
	liar := result("liar", "n=-1")
	all[liar.CID] = "liar"
	pages := []search.Page{
		{Results: []search.Result{r["a"], r["c"]}, More: true}, // has more after c
		{Results: []search.Result{r["a"], r["b"], r["d"], r["e"]}},
		{Results: []search.Result{liar, r["e"], r["b"]}}, // a non-match, and out of order
	}
	m := search.Merge(q, nil, 10, pages)
	if got := strings.Join(names(m.Results, all), ","); got != "a,b,c" || !m.More || m.Dropped != 2 {
		t.Fatalf("merged %s more=%v dropped=%d, want a,b,c, more (bounded by the first holder's c), 2 dropped", got, m.More, m.Dropped)
	}
	m = search.Merge(q, nil, 2, pages[1:])
	if got := strings.Join(names(m.Results, all), ","); got != "a,b" || !m.More {
		t.Fatalf("limit 2: %s more=%v", got, m.More)
	}
	after, _ := q.SortKey(r["b"].Tags, r["b"].CID)
	m = search.Merge(q, after, 10, pages[1:])
	if got := strings.Join(names(m.Results, all), ","); got != "d,e" || m.More {
		t.Fatalf("after b: %s more=%v", got, m.More)
	}
}
