package gateway

import (
	"context"
	"net/http/httptest"
	"testing"
)

func TestWantFormat(t *testing.T) {
	for _, tc := range []struct {
		query, accept, want string
		status              int
	}{
		{"?format=raw", "", mediaRaw, 0},
		{"?format=car", "application/vnd.ipld.raw", mediaCAR, 0}, // format wins
		{"", "application/vnd.ipld.car; version=1; order=dfs", mediaCAR, 0},
		{"", "application/vnd.ipld.raw;q=0.5, application/vnd.ipld.car;q=0.9", mediaCAR, 0},
		{"", "application/vnd.ipld.car;q=0, application/vnd.ipld.raw", mediaRaw, 0},
		{"", "application/vnd.ipld.car; version=2", "", 406},
		{"?format=car&car-version=2", "", "", 406},
		{"", "text/html,*/*", "", 400},
		{"?format=dag-json", "", "", 400},
	} {
		r := httptest.NewRequest("GET", "/ipfs/x"+tc.query, nil)
		if tc.accept != "" {
			r.Header.Set("Accept", tc.accept)
		}
		got, status, err := wantFormat(r)
		if got != tc.want || status != tc.status || (tc.status != 0) != (err != nil) {
			t.Errorf("%s Accept %q: %q, %d, %v; want %q, %d", tc.query, tc.accept, got, status, err, tc.want, tc.status)
		}
	}
}

func TestParseEntityBytes(t *testing.T) {
	for _, tc := range []struct {
		in                   string
		from, to             int64
		fromEnd, toEnd, star bool
		bad                  bool
	}{
		{in: "0:99", to: 99},
		{in: "-1024:*", from: -1024, fromEnd: true, star: true},
		{in: "499:-1000", from: 499, to: -1000, toEnd: true},
		{in: "5:2", bad: true},
		{in: "5", bad: true},
		{in: "a:b", bad: true},
	} {
		from, to, fe, te, star, err := parseEntityBytes(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && (from != tc.from || to != tc.to || fe != tc.fromEnd || te != tc.toEnd || star != tc.star)) {
			t.Errorf("%s: %d %d %v %v %v %v", tc.in, from, to, fe, te, star, err)
		}
	}
}

func TestNoneMatch(t *testing.T) {
	for h, want := range map[string]bool{`"a"`: true, `"b", "a"`: true, `W/"a"`: true, `*`: true, `"b"`: false, ``: false} {
		if noneMatch(h, `"a"`) != want {
			t.Errorf("If-None-Match %q: want %v", h, want)
		}
	}
}

func TestServesHost(t *testing.T) {
	s := &Server{opts: Options{Hosts: []string{"gw.example.org"}}}
	for host, want := range map[string]bool{
		"localhost:8040": true, "LOCALHOST": true, "a.b.localhost:1": true, "127.0.0.1:8040": true, "[::1]:8040": true,
		"192.0.2.7": true, "gw.example.org": true, "GW.example.org.:443": true,
		"": false, "evil.example": false, "localhost.evil.example:8040": false, "gw.example.org.evil": false, "example.org": false,
	} {
		if got := s.servesHost(host); got != want {
			t.Errorf("Host %q: served %v, want %v", host, got, want)
		}
	}
}

func TestBudgetCountsWhatIsTaken(t *testing.T) {
	s := New(nil, Options{ReadAhead: 4 << 20})
	b := s.budget
	if err := b.Acquire(context.Background(), 3<<20); err != nil {
		t.Fatal(err)
	}
	if b.TryAcquire(2 << 20) {
		t.Fatal("took 2 MiB past a 4 MiB budget with 3 taken")
	}
	if !b.TryAcquire(1 << 20) {
		t.Fatal("refused the last MiB")
	}
	if got := s.ReadAheadTaken(); got != 4<<20 {
		t.Errorf("taken %d, want 4 MiB", got)
	}
	b.Release(3 << 20)
	b.Release(1 << 20)
	if got := s.ReadAheadTaken(); got != 0 {
		t.Errorf("all released: taken %d", got)
	}
}
