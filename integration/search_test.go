package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/libp2p/go-libp2p/core/peer"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/search"
)

type searchOut struct {
	Results []struct {
		CID  string `json:"cid"`
		Size uint64 `json:"size"`
		Tags []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"tags"`
	} `json:"results"`
	Cursor   string `json:"cursor"`
	Holders  int    `json:"holders"`
	Answered int    `json:"answered"`
	Partial  bool   `json:"partial"`
}

// search runs 'ddc search --json' on r and returns its answer and exit code.
func (r *repo) search(t *testing.T, args ...string) (searchOut, int, string) {
	t.Helper()
	code, out, errs := r.run(nil, append([]string{"search", "--json"}, args...)...)
	var a searchOut
	if code == 0 {
		if err := json.Unmarshal([]byte(out), &a); err != nil {
			t.Fatalf("ddc search %v: %v in %q", args, err, out)
		}
	}
	return a, code, errs
}

func (a searchOut) cids() []string {
	var out []string
	for _, r := range a.Results {
		out = append(out, r.CID)
	}
	slices.Sort(out)
	return out
}

// TestSearchAcrossHolders: five daemons each hold different files of one
// bucket; a sixth that holds nothing finds every match, page by page, and
// fetches a file by its path; with one holder stopped it finds the rest
// and says the answer is partial.
func TestSearchAcrossHolders(t *testing.T) {
	ds := startCluster(t, "default", 6)
	owner, seeker := ds[0], ds[5]
	b := strings.TrimSpace(owner.ok(nil, "bucket", "create", "--name", "talks"))
	byHolder := make([][]string, 5)
	var all []string
	files := map[string]string{}
	for i, h := range ds[:5] {
		args := []string{"-b", b}
		if h != owner {
			args = append(args, "--token", strings.TrimSpace(owner.ok(nil, "bucket", "grant", b, "--to", h.state.PeerID, "--ops", "put")))
		}
		for j := range 3 {
			src := randomFile(t, uint64(100+i*3+j), 10_000)
			path := fmt.Sprintf("/talks/%d/%d.bin", i, j)
			c := h.put(src, append(args, "--path", path, "-t", "kind=talk", "-t", fmt.Sprintf("n=%d", i*10+j))...)
			byHolder[i] = append(byHolder[i], c)
			all = append(all, c)
			files[path] = src
		}
		h.put(randomFile(t, uint64(200+i), 1000), append(args, "-t", "kind=other")...)
	}
	slices.Sort(all)

	var a searchOut
	waitFor(t, "the seeker to find every holder's files", 60*time.Second, func() bool {
		var code int
		a, code, _ = seeker.search(t, "-b", b, "kind=talk")
		return code == 0 && len(a.Results) == len(all)
	})
	if !slices.Equal(a.cids(), all) || a.Partial || a.Answered != 5 || a.Holders != 5 {
		t.Fatalf("search from the sixth node: %d results, %d of %d holders, partial %v; want %d from 5 of 5", len(a.Results), a.Answered, a.Holders, a.Partial, len(all))
	}
	// Numeric range and paging: n>=12 is holders 1..4's 12 files; in pages of 5.
	var paged []string
	cursor := ""
	for range 10 {
		args := []string{"-b", b, "n>=10", "--limit", "5"}
		if cursor != "" {
			args = append(args, "--cursor", cursor)
		}
		p, code, errs := seeker.search(t, args...)
		if code != 0 {
			t.Fatalf("page after %q: exit %d: %s", cursor, code, errs)
		}
		paged = append(paged, p.cids()...)
		if cursor = p.Cursor; cursor == "" {
			break
		}
	}
	slices.Sort(paged)
	if want := slices.Sorted(slices.Values(slices.Concat(byHolder[1:]...))); !slices.Equal(paged, want) {
		t.Fatalf("n>=10 in pages of 5: %d files %v, want %d", len(paged), paged, len(want))
	}
	if _, code, errs := seeker.search(t, "-b", b, "kind=other", "--cursor", cursor+"x"); code != 2 || !strings.Contains(errs, "cursor") {
		t.Fatalf("a bad cursor: exit %d, %q", code, errs)
	}

	// A file by its path, from the bucket's holders.
	out := filepath.Join(t.TempDir(), "by-path")
	seeker.ok(nil, "get", "-b", b, "--path", "/talks/2/1.bin", "-o", out)
	if !sameFile(t, files["/talks/2/1.bin"], out) {
		t.Fatal("get --path fetched other bytes")
	}

	ds[3].stop(t)
	a, code, errs := seeker.search(t, "-b", b, "kind=talk", "--timeout", "10s")
	want := slices.DeleteFunc(slices.Clone(all), func(c string) bool { return slices.Contains(byHolder[3], c) })
	if code != 0 || !slices.Equal(a.cids(), want) || !a.Partial || a.Answered != 4 {
		t.Fatalf("with holder 3 stopped: exit %d (%s), %d results, %d answered, partial %v; want %d results from 4 holders, partial", code, errs, len(a.Results), a.Answered, a.Partial, len(want))
	}
}

// TestSearchPrivateBucket: a private bucket's files are not found without
// a grant, from a node that holds them or not, nor by a peer asking a
// holder directly; they are with a grant to the node's key or a bearer.
func TestSearchPrivateBucket(t *testing.T) {
	owner := startDaemon(t, newDaemonRepo(t))
	n2 := startDaemon(t, newDaemonRepo(t), "--bootstrap", owner.tcpAddr())
	b := strings.TrimSpace(owner.ok(nil, "bucket", "create", "--private"))
	c := owner.put(randomFile(t, 31, 5000), "-b", b, "-t", "kind=secret")
	if a, code, errs := owner.search(t, "-b", b, "kind=secret"); code != 0 || len(a.Results) != 1 || a.Results[0].CID != c {
		t.Fatalf("the owner's search: exit %d (%s), %+v", code, errs, a)
	}
	waitFor(t, "node 2 to find the bucket", 30*time.Second, func() bool { _, err := n2.bucket(b); return err == nil })

	if _, code, errs := n2.search(t, "-b", b, "kind=secret"); code != 6 || !strings.Contains(errs, "no grant") {
		t.Fatalf("search without a grant: exit %d, %q; want 6, no grant", code, errs)
	}
	other := strings.TrimSpace(owner.ok(nil, "bucket", "create", "--private"))
	wrong := strings.TrimSpace(owner.ok(nil, "bucket", "grant", other, "--to", n2.state.PeerID))
	if _, code, errs := n2.search(t, "-b", b, "--token", wrong, "kind=secret"); code != 6 || !strings.Contains(errs, "another bucket") {
		t.Fatalf("search with another bucket's grant: exit %d, %q", code, errs)
	}
	good := strings.TrimSpace(owner.ok(nil, "bucket", "grant", b, "--to", n2.state.PeerID))
	var a searchOut
	waitFor(t, "node 2 to find the owner's file with a grant", 30*time.Second, func() bool {
		var code int
		a, code, _ = n2.search(t, "-b", b, "--token", good, "kind=secret")
		return code == 0 && len(a.Results) == 1
	})
	if a.Results[0].CID != c {
		t.Fatalf("found %+v, want %s", a.Results, c)
	}

	// A peer that asks the holder itself gets nothing without a grant.
	h, ai, ctx := dialDaemon(t, owner)
	id, _ := bucket.ParseID(b)
	q, _ := search.Parse([]string{"kind"})
	var denied *search.DeniedError
	for name, token := range map[string]string{"no token": "", "another peer's grant": good, "another bucket's": wrong} {
		page, err := search.Ask(ctx, h, "default", ai.ID, search.NewRequest(id[:], []byte(token), q, nil, 10))
		if !errors.As(err, &denied) || len(page.Results) != 0 {
			t.Fatalf("%s, asking the holder directly: %d results, %v; want a refusal", name, len(page.Results), err)
		}
	}
	// A bearer grant: its chain with a proof made for this holder reads;
	// the chain alone, or with a proof made for another node, does not.
	bearer, err := bucket.ParseToken(strings.TrimSpace(owner.ok(nil, "bucket", "grant", b, "--bearer")))
	if err != nil {
		t.Fatal(err)
	}
	ask := func(holder []byte) (search.Page, error) {
		req := search.NewRequest(id[:], []byte(bearer.Chain()), q, nil, 10)
		if holder != nil {
			req.Proof, _ = bucket.Prove(*bearer.Key, id, holder, []byte(h.ID()))
		}
		return search.Ask(ctx, h, "default", ai.ID, req)
	}
	n2ID, _ := peer.Decode(n2.state.PeerID)
	for name, holder := range map[string][]byte{"a bearer grant without a proof": nil, "a bearer grant with another holder's proof": []byte(n2ID)} {
		if page, err := ask(holder); !errors.As(err, &denied) || len(page.Results) != 0 {
			t.Fatalf("%s, asking the holder directly: %d results, %v; want a refusal", name, len(page.Results), err)
		}
	}
	page, err := ask([]byte(ai.ID))
	if err != nil || len(page.Results) != 1 || page.Results[0].CID.String() != c {
		t.Fatalf("a bearer grant, asking the holder directly: %+v, %v", page, err)
	}
}
