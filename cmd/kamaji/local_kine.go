package main

import (
	"github.com/spf13/cobra"

	"github.com/openhcp/kamaji/cmd/internal/local"
)

func newLocalForwardCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "forward LISTEN=TARGET...",
		Short:  "Relay TCP connections from each LISTEN address to its TARGET (started by local up for MariaDB and PostgreSQL)",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			return local.Forward(ctx, args)
		},
	}
}

func newLocalBenchKineCommand() *cobra.Command {
	cfg := local.DefaultConfig()
	var o local.KineBenchOptions
	cmd := &cobra.Command{
		Use:    "bench-kine",
		Short:  "Per DataStore driver, EnsureTenant latency, time to tenant Ready and ConfigMap create latency, against etcd (make bench)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			cfg.Out = cmd.OutOrStdout()
			return local.BenchKine(ctx, cfg, o)
		},
	}
	cmd.Flags().StringVar(&cfg.StateDir, "state-dir", cfg.StateDir, "The running plane's state folder (up with --datastores all).")
	cmd.Flags().IntVar(&o.Creates, "creates", 1000, "ConfigMaps created one after another through each tenant apiserver.")
	cmd.Flags().IntVar(&o.Ensures, "ensures", 20, "New tenants EnsureTenant creates per driver.")
	return cmd
}

func newLocalBenchMigrationCommand() *cobra.Command {
	cfg := local.DefaultConfig()
	var o local.MigrationBenchOptions
	cmd := &cobra.Command{
		Use:    "bench-migration",
		Short:  "Migrations of a running tenant etcd -> etcd and etcd -> PostgreSQL: duration, copy rate, write freeze (make bench)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			cfg.Out = cmd.OutOrStdout()
			return local.BenchMigration(ctx, cfg, o)
		},
	}
	cmd.Flags().StringVar(&cfg.StateDir, "state-dir", cfg.StateDir, "The running plane's state folder (up with --datastores etcd-2,postgresql).")
	cmd.Flags().IntSliceVar(&o.Objects, "objects", []int{1000, 10000}, "Tenant sizes (ConfigMaps) to migrate.")
	return cmd
}
