//go:build linux

package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/internal/netbed"
)

// runLAN measures a 1 GiB 'ddc get' across the LAN test bed (two network
// namespaces on a private bridge, MTU 1500), both daemons with the
// README's defaults and nothing but a repo path, against one raw libp2p
// stream across the same link over TCP and over QUIC, and the TCP stream
// landed on the getter's disk, in interleaved runs.
func runLAN(size int64, dir string, runs int) error {
	bed, err := netbed.New(2)
	if err != nil {
		return err
	}
	defer bed.Close()
	work, bin, err := workWithDDC(dir, "ddc-lanbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	raw := func(transport string, land bool) (time.Duration, error) {
		listen := "/ip4/" + bed.Hosts[0].IP + "/tcp/0"
		if transport == "quic" {
			listen = "/ip4/" + bed.Hosts[0].IP + "/udp/0/quic-v1"
		}
		srv := bed.Command(0, self, "-role", "raw-serve", "-listen", listen, "-size", strconv.FormatInt(size, 10))
		in, _ := srv.StdinPipe()
		out, _ := srv.StdoutPipe()
		srv.Stderr = os.Stderr
		if err := srv.Start(); err != nil {
			return 0, err
		}
		defer func() { in.Close(); srv.Wait() }()
		addr, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			return 0, fmt.Errorf("raw server: %w", err)
		}
		args := []string{"-role", "raw-get", "-peer", strings.TrimSpace(addr), "-size", strconv.FormatInt(size, 10)}
		if land {
			args = append(args, "-land", filepath.Join(work, "landed"))
		}
		got, err := bed.Command(1, self, args...).Output()
		if err != nil {
			return 0, fmt.Errorf("raw get over %s: %w", transport, err)
		}
		return time.ParseDuration(strings.TrimSpace(string(got)))
	}
	daemon := func(host int, path string) (*benchDaemon, error) {
		return startDaemonCmd(bed.Command(host, bin, "--repo", path, "node", "run", "--log-level", "warn"), path)
	}
	holder, err := daemon(0, filepath.Join(work, "holder"))
	if err != nil {
		return err
	}
	defer holder.stop()
	put := bed.Command(0, bin, "--repo", holder.repo, "put", "-")
	put.Stdin = io.LimitReader(rand.NewChaCha8([32]byte{5}), size)
	idb, err := put.Output()
	if err != nil {
		return fmt.Errorf("put: %w", err)
	}
	id := strings.TrimSpace(string(idb))
	gb := func(d time.Duration) float64 { return float64(size) / d.Seconds() / 1e9 }
	var tcpT, quicT, landT, getT, ratios []time.Duration
	for i := range runs + 1 {
		t, err := raw("tcp", false)
		if err != nil {
			return err
		}
		q, err := raw("quic", false)
		if err != nil {
			return err
		}
		l, err := raw("tcp", true)
		if err != nil {
			return err
		}
		path := filepath.Join(work, fmt.Sprintf("getter-%d", i))
		g, err := lanGet(bed, bin, path, id, size)
		if err != nil {
			return err
		}
		floor := max(t, l) // the lower rate of the two
		fmt.Fprintf(os.Stderr, "run %d: raw TCP %.3f GB/s, raw QUIC %.3f GB/s, raw TCP into disk %.3f GB/s, ddc get %.3f GB/s (%.2f× the lower)\n",
			i, gb(t), gb(q), gb(l), gb(g), floor.Seconds()/g.Seconds())
		if i > 0 {
			tcpT, quicT, landT, getT = append(tcpT, t), append(quicT, q), append(landT, l), append(getT, g)
			ratios = append(ratios, time.Duration(float64(time.Second)*floor.Seconds()/g.Seconds()))
		}
	}
	r := med(ratios).Seconds()
	rows := []result{
		{name: "ddc get " + human(size) + " across the LAN bed, defaults, CLI process", value: fmt.Sprintf("%.3f GB/s", gb(med(getT))),
			baseline: fmt.Sprintf("lower of raw libp2p TCP stream %.3f GB/s and it landed on disk %.3f GB/s", gb(med(tcpT)), gb(med(landT))),
			ratio:    fmt.Sprintf("%.2f× (median of %d runs)", r, len(ratios)), target: "≥ 0.85×", ok: r >= 0.85},
		{name: "raw libp2p QUIC stream across the same link", value: fmt.Sprintf("%.3f GB/s", gb(med(quicT))),
			baseline: fmt.Sprintf("raw TCP stream %.3f GB/s", gb(med(tcpT))), ratio: fmt.Sprintf("%.2f×", med(tcpT).Seconds()/med(quicT).Seconds()),
			target: "(informative: why LAN dials prefer TCP)", ok: true},
	}
	return report(fmt.Sprintf("ddc LAN benchmark: two namespaces on a bridge, %s file, %d runs (median)", human(size), runs), rows)
}

// lanGet starts a getter daemon on host 1 with the defaults and times
// 'ddc get' there once mDNS has connected it.
func lanGet(bed *netbed.Bed, bin, path, id string, size int64) (time.Duration, error) {
	d, err := startDaemonCmd(bed.Command(1, bin, "--repo", path, "node", "run", "--log-level", "warn"), path)
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(path)
	defer d.stop()
	return timedGet(func(args ...string) *exec.Cmd { return bed.Command(1, bin, args...) }, path, id, size)
}

// runRole runs one end of a raw stream in a process of its own (in a
// namespace of the bed): raw-serve listens, prints its address and serves
// until stdin closes; raw-get reads the stream and prints how long it took.
func runRole(role string, args []string) error {
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	listen := fs.String("listen", "", "raw-serve: multiaddr to listen on")
	from := fs.String("peer", "", "raw-get: the server's multiaddr with /p2p/")
	size := fs.Int64("size", 1<<30, "bytes")
	land := fs.String("land", "", "raw-get: land the stream in this file as the store writes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch role {
	case "raw-serve":
		h, err := libp2p.New(libp2p.ListenAddrStrings(*listen))
		if err != nil {
			return err
		}
		defer h.Close()
		serveRaw(h, *size)
		addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
		if err != nil {
			return err
		}
		fmt.Println(addrs[0])
		io.Copy(io.Discard, os.Stdin)
		return nil
	case "raw-get":
		ai, err := peer.AddrInfoFromString(*from)
		if err != nil {
			return err
		}
		h, err := libp2p.New(libp2p.NoListenAddrs)
		if err != nil {
			return err
		}
		defer h.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := h.Connect(ctx, *ai); err != nil {
			return err
		}
		var d time.Duration
		if *land != "" {
			d, err = readRawToDisk(h, ai.ID, *size, *land)
		} else {
			d, err = readRaw(h, ai.ID, *size, io.Discard)
		}
		if err != nil {
			return err
		}
		fmt.Println(d)
		return nil
	}
	return fmt.Errorf("unknown role %q", role)
}
