package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ddc-project/ddc/node/repo"
)

// netFlags are the network settings ddc init writes to the config and
// ddc node run applies (to a new repo's config, or for this run only).
type netFlags struct {
	listen, announce, bootstrap []string
	api, cluster, dhtMode       string
	gateway                     string
	swarmKey                    string
	noMDNS                      bool
	storageMax                  string
}

func (f *netFlags) add(c *cobra.Command) {
	fl := c.Flags()
	fl.StringArrayVar(&f.listen, "listen", nil, "listen multiaddr, repeatable (default: TCP and QUIC on port 4040, all interfaces; port 0 picks a free one)")
	fl.StringArrayVar(&f.announce, "announce", nil, "address to tell peers instead of the listen addresses, repeatable")
	fl.StringArrayVar(&f.bootstrap, "bootstrap", nil, "bootstrap peer multiaddr with /p2p/ID, repeatable")
	fl.StringVar(&f.api, "api", "", "HTTP API address (default 127.0.0.1:5040; beyond loopback every request needs the repo's API secret)")
	fl.StringVar(&f.gateway, "gateway", "", "HTTP gateway address, or off (default "+repo.DefaultGatewayAddress+": on loopback; 0.0.0.0:8040 serves other machines, read-only)")
	fl.StringVar(&f.cluster, "cluster", "", "cluster to join (default \"default\")")
	fl.StringVar(&f.swarmKey, "swarm-key", "", "the cluster's swarm key file ('ddc cluster key gen'): connect only to nodes holding it; init copies it into the repo")
	fl.StringVar(&f.dhtMode, "dht-mode", "", "DHT mode: auto, server or client (default auto)")
	fl.BoolVar(&f.noMDNS, "no-mdns", false, "do not look for peers on the local network with mDNS")
	fl.StringVar(&f.storageMax, "storage-max", "", "bound the store's live bytes, such as 50GB: past 90% cache is evicted, least recently used first, down to 80% (default: no bound); 0 for none")
}

// apply writes the flags that were given over cfg.
func (f *netFlags) apply(c *cobra.Command, cfg *repo.Config) error {
	nc := &cfg.Network
	set := c.Flags().Changed
	if set("gateway") {
		cfg.Gateway.Address = f.gateway
		if f.gateway == "off" {
			cfg.Gateway.Address = ""
		}
	}
	if set("listen") {
		nc.Listen = f.listen
	}
	if set("announce") {
		nc.Announce = f.announce
	}
	if set("bootstrap") {
		nc.Bootstrap = f.bootstrap
	}
	if set("api") {
		nc.API = f.api
	}
	if set("cluster") {
		nc.Cluster = f.cluster
	}
	if set("dht-mode") {
		nc.DHTMode = f.dhtMode
	}
	if set("no-mdns") {
		nc.MDNS = !f.noMDNS
	}
	if set("swarm-key") {
		nc.SwarmKey, _ = filepath.Abs(f.swarmKey)
	}
	if set("storage-max") {
		n, err := parseSize(f.storageMax)
		if err != nil {
			return usageErr(fmt.Errorf("--storage-max: %w", err))
		}
		cfg.Store.MaxBytes = uint64(n)
	}
	return nil
}

// initRepo creates the repo with the defaults and the flags.
func (e *env) initRepo(c *cobra.Command, nf *netFlags) (string, error) {
	cfg := repo.DefaultConfig()
	if err := nf.apply(c, &cfg); err != nil {
		return "", err
	}
	if err := cfg.Validate(); err != nil {
		return "", usageErr(err)
	}
	if nf.swarmKey != "" {
		text, err := os.ReadFile(nf.swarmKey)
		if err != nil {
			return "", usageErr(fmt.Errorf("--swarm-key: %w", err))
		}
		if err := repo.InstallSwarmKey(e.repoPath, text, nf.swarmKey); err != nil {
			return "", usageErr(err)
		}
		cfg.Network.SwarmKey = repo.SwarmKeyFile
	}
	id, err := repo.Init(e.repoPath, cfg)
	return id.String(), err
}
