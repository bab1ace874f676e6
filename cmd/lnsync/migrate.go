package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/lnsync/lnsync/config"
	"github.com/lnsync/lnsync/persistence"
)

func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", "Usage: lnsync migrate [-config PATH]\n\nApplies pending database migrations and exits. Running it again is a no-op.", stderr)
	configPath := fs.String("config", "./config.toml", "configuration file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	_, logger, store, err := openConfigured(ctx, *configPath, stderr)
	if err != nil {
		return err
	}
	defer store.Close()
	n, err := store.Migrate(ctx, logger)
	if err != nil {
		return err
	}
	v, err := store.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "applied %d migrations; schema version %d\n", n, v)
	return nil
}

// loadConfig loads path with environment overrides.
func loadConfig(path string) (config.Config, error) {
	return config.Load(path, nil)
}

// openConfigured loads the configuration at path, builds the logger it asks
// for and connects to its database. The caller closes the store.
func openConfigured(ctx context.Context, path string, stderr io.Writer) (config.Config, *slog.Logger, *persistence.Store, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return cfg, nil, nil, err
	}
	logger := cfg.Logger(stderr)
	store, err := openStore(ctx, cfg)
	return cfg, logger, store, err
}

// openStore connects to the configured database.
func openStore(ctx context.Context, cfg config.Config) (*persistence.Store, error) {
	if cfg.Database.URL == "" {
		return nil, &config.Error{Key: "database.url", Msg: "not set (set it in the config file or LNSYNC_DATABASE_URL; `make run` provides one)"}
	}
	return persistence.Open(ctx, cfg.Database.URL, cfg.Database.MaxConns)
}
