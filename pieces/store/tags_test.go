package store_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/store"
	"github.com/ddc-project/ddc/search"
)

// putDescriptor stores a file descriptor with the tags given as
// "key=value" (with Searchable), in bucket b when b is not nil.
func putDescriptor(t testing.TB, s *store.Store, b *store.Bucket, name string, tags ...pieces.Tag) cid.Cid {
	t.Helper()
	p := pieces.Piece{Data: []byte(name), Tags: tags}
	data, c, err := p.EncodeCID(pieces.SHA2_256)
	if err != nil {
		t.Fatal(err)
	}
	tx := s.Begin()
	if b != nil {
		tx.InBucket(*b)
	}
	if err := tx.PutPiece(c, data); err != nil {
		t.Fatal(err)
	}
	tx.Pin(c)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return c
}

func tags(kv ...string) []pieces.Tag {
	out := make([]pieces.Tag, len(kv))
	for i, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		out[i] = pieces.Tag{Key: k, Value: []byte(v), Searchable: true}
	}
	return out
}

// searchAll walks every page of q with the given page size and returns
// the names (inline data) of the files found, in order.
func searchAll(t testing.TB, s *store.Store, b store.Bucket, q search.Query, pageSize int) []string {
	t.Helper()
	var out []string
	var after []byte
	for range 100_000 {
		p, err := s.Search(ctx, b, q, after, pageSize)
		if err != nil {
			t.Fatalf("search %q: %v", q.Strings(), err)
		}
		for _, r := range p.Results {
			data, err := s.GetPiece(ctx, r.CID)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := pieces.Decode(r.CID, data)
			out = append(out, string(d.Data))
			if r.Size != uint64(len(d.Data)) || len(r.Tags) != len(d.Tags) {
				t.Fatalf("result %s: size %d, %d tags; descriptor has %d, %d", r.CID, r.Size, len(r.Tags), len(d.Data), len(d.Tags))
			}
		}
		if !p.More {
			return out
		}
		if len(p.Results) == 0 {
			t.Fatal("a page with more to come has no results")
		}
		last := p.Results[len(p.Results)-1]
		after, _ = q.SortKey(last.Tags, last.CID)
	}
	t.Fatal("paging does not end")
	return nil
}

func mustQuery(t testing.TB, terms ...string) search.Query {
	t.Helper()
	q, err := search.Parse(terms)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestSearchQueries(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	hidden := tags("secret=x", "kind=video")
	hidden[0].Searchable = false
	files := map[string][]pieces.Tag{
		"keynote": tags("content-type=video/mp4", "file-path=/talks/2026/keynote.mp4", "owner=alice", "year=2026"),
		"intro":   tags("content-type=video/webm", "file-path=/talks/2025/intro.webm", "owner=bob", "year=2025"),
		"old":     tags("content-type=video/mp4", "file-path=/talks/1999/old.mp4", "owner=alice", "year=1999"),
		"notes":   tags("content-type=text/plain", "owner=alice", "year=2026-draft", "size=1000001"),
		"tiny":    tags("content-type=text/plain", "size=99", "year="),
		"eq":      tags("formula=a=b>c", "owner=carol"),
		"twice":   tags("year=2030", "year=1990"),
		"hidden":  hidden,
	}
	for name, tg := range files {
		putDescriptor(t, s, nil, name, tg...)
	}
	cases := []struct {
		terms []string
		want  []string // in order
	}{
		{[]string{"owner=alice"}, nil},                                          // order by CID: checked as a set below
		{[]string{"content-type^=video/"}, []string{"keynote", "old", "intro"}}, // by value, then CID
		{[]string{"year>=2020"}, []string{"intro", "keynote", "twice"}},         // numeric: not "2026-draft", not ""
		{[]string{"year<2000"}, []string{"twice", "old"}},                       // twice by its 1990
		{[]string{"year>=2020", "year<2026"}, []string{"intro"}},
		{[]string{"year>2026-"}, []string{"notes", "twice"}}, // byte order: "2026-draft" > "2026-", "2030" > "2026-"
		{[]string{"size>1000000"}, []string{"notes"}},
		{[]string{"size<=99"}, []string{"tiny"}},
		{[]string{"year"}, []string{"tiny", "twice", "old", "intro", "keynote", "notes"}}, // has: by smallest value
		{[]string{"owner=alice", "content-type=video/mp4"}, nil},
		{[]string{"owner=alice", "year>=2020"}, []string{"keynote"}},
		{[]string{"formula=a=b>c"}, []string{"eq"}},
		{[]string{"formula^=a="}, []string{"eq"}},
		{[]string{"year="}, []string{"tiny"}},
		{[]string{"secret"}, []string{}},
		{[]string{"kind=video"}, []string{"hidden"}},
		{[]string{"owner=nobody"}, []string{}},
		{[]string{"file-path=/talks/2026/keynote.mp4"}, []string{"keynote"}},
	}
	for _, tc := range cases {
		q := mustQuery(t, tc.terms...)
		got := searchAll(t, s, store.NoBucket, q, 2)
		want := tc.want
		if want == nil { // an exact query: any order of CIDs, so compute it
			want = bruteForce(t, s, q, files)
		}
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%q: got %q, want %q", tc.terms, got, want)
		}
	}
}

// bruteForce matches q against every file and sorts by sort key.
func bruteForce(t testing.TB, s *store.Store, q search.Query, files map[string][]pieces.Tag) []string {
	t.Helper()
	type hit struct {
		k    []byte
		name string
	}
	var hits []hit
	for name, tg := range files {
		p := pieces.Piece{Data: []byte(name), Tags: tg}
		_, c, err := p.EncodeCID(pieces.SHA2_256)
		if err != nil {
			t.Fatal(err)
		}
		if !q.Matches(tg) {
			continue
		}
		k, ok := q.SortKey(tg, c)
		if !ok {
			t.Fatalf("%s matches %q but has no sort key", name, q.Strings())
		}
		hits = append(hits, hit{k, name})
	}
	slices.SortFunc(hits, func(a, b hit) int { return bytes.Compare(a.k, b.k) })
	out := []string{}
	for _, h := range hits {
		out = append(out, h.name)
	}
	return out
}

// TestSearchRandom checks random queries on random files, with bytes that
// test the index's encoding, against a brute-force scan of the same data.
func TestSearchRandom(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	rng := rand.New(rand.NewPCG(1, uint64(len(t.Name()))))
	big := strings.Repeat("v", pieces.MaxTagValueLen-1)
	keys := []string{"a", "ab", "abc", "b", "year", "size", "x y"}
	values := []string{"", "=", "a=b", ">x", "<", "\x00", "\x00\x01", "a\x00", "a\x00b", "\xff\xfe", "\xff", "a", "ab", "abc", "b",
		"2020", "2019", "-3", "0", "0.5", "10", "9", "007", "1e3", "2020-01", big, big + "w", "1000000", "1000001", "99999999999999999999", "99999999999999999998"}
	bucket := store.Bucket{7}
	inBucket := map[string][]pieces.Tag{}
	noBucket := map[string][]pieces.Tag{}
	for i := range 400 {
		var tg []pieces.Tag
		for range rng.IntN(4) {
			tg = append(tg, pieces.Tag{Key: keys[rng.IntN(len(keys))], Value: []byte(values[rng.IntN(len(values))]), Searchable: rng.IntN(8) > 0})
		}
		name := fmt.Sprintf("f%03d", i)
		if i%3 == 0 {
			putDescriptor(t, s, &bucket, name, tg...)
			inBucket[name] = tg
		} else {
			putDescriptor(t, s, nil, name, tg...)
			noBucket[name] = tg
		}
	}
	ops := []string{"=", "^=", ">=", ">", "<=", "<", ""}
	randomTerm := func() string {
		k, op := keys[rng.IntN(len(keys))], ops[rng.IntN(len(ops))]
		if op == "" {
			return k
		}
		v := values[rng.IntN(len(values))]
		if rng.IntN(4) == 0 && len(v) > 0 {
			v = v[:rng.IntN(len(v))]
		}
		if op[0] == '>' || op[0] == '<' {
			v = strings.TrimLeft(v, "<>") // a value may not start with another < or >
		}
		return k + op + v
	}
	found := 0
	for range 300 {
		terms := make([]string, 1+rng.IntN(3))
		for i := range terms {
			terms[i] = randomTerm()
		}
		q := mustQuery(t, terms...)
		pageSize := 1 + rng.IntN(9)
		for _, space := range []struct {
			b     store.Bucket
			files map[string][]pieces.Tag
		}{{bucket, inBucket}, {store.NoBucket, noBucket}} {
			got := searchAll(t, s, space.b, q, pageSize)
			want := bruteForce(t, s, q, space.files)
			if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("%q (pages of %d) in %x: got %q, want %q", terms, pageSize, space.b[:1], got, want)
			}
			if len(got) > 0 {
				found++
			}
		}
	}
	if found < 150 { // of 600 searches: the data must make most queries find something
		t.Fatalf("only %d of 600 searches found anything: the test data is too sparse to test much", found)
	}
	t.Logf("%d of 600 searches found files", found)
}

// TestSearchPagingWhileAdding walks the pages of a query while another
// goroutine adds matching files: every file there from the start comes
// exactly once.
func TestSearchPagingWhileAdding(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	before := map[string]bool{}
	for i := range 200 {
		name := fmt.Sprintf("old%03d", i)
		putDescriptor(t, s, nil, name, tags("kind=talk", fmt.Sprintf("n=%d", i))...)
		before[name] = true
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			putDescriptor(t, s, nil, fmt.Sprintf("new%05d", i), tags("kind=talk", fmt.Sprintf("n=%d", rand.IntN(400)))...)
		}
	}()
	for _, q := range []search.Query{mustQuery(t, "kind=talk"), mustQuery(t, "n>=0"), mustQuery(t, "n^=1")} {
		got := searchAll(t, s, store.NoBucket, q, 7)
		seen := map[string]int{}
		for _, n := range got {
			seen[n]++
		}
		for n, k := range seen {
			if k > 1 {
				t.Errorf("%q: %s came %d times", q.Strings(), n, k)
			}
		}
		for n := range before {
			if seen[n] == 0 && q.Matches(tags("kind=talk", "n="+strings.TrimLeft(n[3:], "0"))) {
				t.Errorf("%q: %s, there from the start, never came", q.Strings(), n)
			}
		}
	}
	close(stop)
	wg.Wait()
}

func TestTagIndexFollowsPiecesAndBuckets(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	b := store.Bucket{9}
	q := mustQuery(t, "kind=talk")
	find := func(in store.Bucket) []string {
		t.Helper()
		return searchAll(t, s, in, q, 10)
	}
	a := putDescriptor(t, s, nil, "a", tags("kind=talk")...)
	putDescriptor(t, s, &b, "b", tags("kind=talk")...)
	if got := find(store.NoBucket); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("no bucket: %q", got)
	}
	if got := find(b); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("bucket: %q", got)
	}
	// Put again into the bucket: a leaves the space of no bucket.
	putDescriptor(t, s, &b, "a", tags("kind=talk")...)
	if got := find(store.NoBucket); len(got) != 0 {
		t.Fatalf("no bucket after a joined one: %q", got)
	}
	if got := find(b); len(got) != 2 {
		t.Fatalf("bucket: %q", got)
	}
	// A bucket-less put of a piece in a bucket leaves it there.
	putDescriptor(t, s, nil, "a", tags("kind=talk")...)
	if got := find(store.NoBucket); len(got) != 0 {
		t.Fatalf("no bucket after a bucket-less re-put: %q", got)
	}
	if err := s.Delete(a); err != nil {
		t.Fatal(err)
	}
	if got := find(b); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("after deleting a: %q", got)
	}
	// Reindexing gives the same answers.
	if n, err := s.Reindex(ctx); err != nil || n != 1 {
		t.Fatalf("reindex: %d, %v", n, err)
	}
	if got := find(b); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("after reindex: %q", got)
	}
}

func TestReindexAtOpen(t *testing.T) {
	dir := t.TempDir()
	opts := store.DefaultOptions()
	opts.NoTagIndex = true
	s, err := store.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	putDescriptor(t, s, nil, "unindexed", tags("kind=talk")...)
	if got := searchAll(t, s, store.NoBucket, mustQuery(t, "kind"), 10); len(got) != 0 {
		t.Fatalf("a store without the index found %q", got)
	}
	s.Close()
	// Opened with the index, it builds it.
	s = open(t, dir, 0)
	if got := searchAll(t, s, store.NoBucket, mustQuery(t, "kind"), 10); !slices.Equal(got, []string{"unindexed"}) {
		t.Fatalf("after reopening with the index: %q", got)
	}
	putDescriptor(t, s, nil, "later", tags("kind=talk")...)
	s.Close()
	// A store from before the index, stale entries and all, is rebuilt.
	store.DropTagIndexMark(t, dir)
	s = open(t, dir, 0)
	if got := searchAll(t, s, store.NoBucket, mustQuery(t, "kind"), 10); len(got) != 2 {
		t.Fatalf("after a reindex at open: %q", got)
	}
	if got := searchAll(t, s, store.NoBucket, mustQuery(t, "stale"), 10); len(got) != 0 {
		t.Fatalf("stale entries survived the reindex: %q", got)
	}
}

// TestDeleteCorruptDescriptor: a descriptor whose bytes no longer read
// takes its tag entries with it when deleted, though they cannot be named
// from its tags.
func TestDeleteCorruptDescriptor(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0, false)
	c := putDescriptor(t, s, nil, "doomed", tags("kind=talk", "n=5")...)
	keep := putDescriptor(t, s, nil, "kept", tags("kind=talk")...)
	flipByte(t, dir, 3) // the first piece put starts the block
	if _, err := s.GetPiece(ctx, c); err == nil {
		t.Fatal("the flipped descriptor still reads")
	}
	if err := s.Delete(c); err != nil {
		t.Fatal(err)
	}
	if got := searchAll(t, s, store.NoBucket, mustQuery(t, "kind"), 10); !slices.Equal(got, []string{"kept"}) {
		t.Fatalf("after deleting a corrupt descriptor: %q (kept is %s)", got, keep)
	}
	if got := searchAll(t, s, store.NoBucket, mustQuery(t, "n>=0"), 10); len(got) != 0 {
		t.Fatalf("its number entry survived: %q", got)
	}
}
