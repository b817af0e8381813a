package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/ddc-project/ddc/node/repo"
)

// maxKeyText bounds what key import reads: an exported key is 49 bytes.
const maxKeyText = 1 << 10

func newKeyCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "key",
		Short: "Manage account keys (ed25519) in the repo's keystore",
		Long: `Account keys own buckets and sign grants. Each is an ed25519 key kept in
the repo's keys/ folder; its public form is a did:key (did:key:z6Mk...).
The node's own identity is the account named "self".`,
	}
	c.AddCommand(newKeyGenCmd(e), newKeyLsCmd(e), newKeyExportCmd(e), newKeyImportCmd(e))
	return c
}

func newKeyGenCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "gen NAME",
		Short: "Make a new key and print its public form",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, err := repo.Keys(e.repoPath)
			if err != nil {
				return err
			}
			p, err := ks.Generate(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, p)
			return nil
		},
	}
}

func newKeyLsCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "ls",
		Short: "List the keys: name and public form, the node's identity first",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ks, err := repo.Keys(e.repoPath)
			if err != nil {
				return err
			}
			keys, err := ks.List()
			if err != nil {
				return err
			}
			if e.json {
				return writeJSON(e.stdout, keys)
			}
			for _, k := range keys {
				fmt.Fprintf(e.stdout, "%-16s %s\n", k.Name, k.Public)
			}
			return nil
		},
	}
	e.jsonFlag(c)
	return c
}

func newKeyExportCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "export NAME",
		Short: "Print a key's secret, for 'ddc key import' in another repo",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, err := repo.Keys(e.repoPath)
			if err != nil {
				return err
			}
			text, err := ks.Export(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stderr, "ddc: this is a secret: whoever has it can act as", args[0])
			fmt.Fprintln(e.stdout, text)
			return nil
		},
	}
}

func newKeyImportCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "import NAME [FILE|-]",
		Short: "Store an exported key as NAME (from FILE, or stdin)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageErr(fmt.Errorf("%s: want NAME and an optional FILE, got %d arguments", cmd.CommandPath(), len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, err := repo.Keys(e.repoPath)
			if err != nil {
				return err
			}
			in := e.stdin
			if len(args) == 2 && args[1] != "-" {
				f, err := os.Open(args[1])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			text, err := io.ReadAll(io.LimitReader(in, maxKeyText))
			if err != nil {
				return err
			}
			p, err := ks.Import(args[0], string(text))
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, p)
			return nil
		},
	}
}
