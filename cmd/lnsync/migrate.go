package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/lnsync/lnsync/config"
	"github.com/lnsync/lnsync/persistence"
)

func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", "Usage: lnsync migrate [-config PATH]\n\nApplies pending database migrations and exits. Running it again is a no-op.", stderr)
	configPath := fs.String("config", "", configUsage)
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

// defaultConfigPath is read when -config is not given and the file exists.
const defaultConfigPath = "./config.toml"

// configUsage documents every command's -config flag.
const configUsage = "configuration file (default " + defaultConfigPath + " when it exists; without a file, the built-in defaults and LNSYNC_* environment variables)"

// loadConfig loads path with environment overrides. An empty path means
// defaultConfigPath if it exists, else no file: a deployment configured
// only through the environment needs no flag.
func loadConfig(path string) (config.Config, error) {
	if path == "" {
		if _, err := os.Stat(defaultConfigPath); err == nil {
			path = defaultConfigPath
		}
	}
	cfg, err := config.Load(path, nil)
	if err == nil {
		shutdownTimeout.Store(int64(cfg.ShutdownTimeout.Std()))
	}
	return cfg, err
}

// openConfigured loads the configuration at path, builds the logger it asks
// for and connects to its database, waiting up to a minute for it to come
// up (see openStoreWithRetry). The caller closes the store.
func openConfigured(ctx context.Context, path string, stderr io.Writer) (config.Config, *slog.Logger, *persistence.Store, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return cfg, nil, nil, err
	}
	logger := cfg.Logger(stderr)
	store, err := openStoreWithRetry(ctx, cfg, logger)
	return cfg, logger, store, err
}

// openStore connects to the configured database.
func openStore(ctx context.Context, cfg config.Config) (*persistence.Store, error) {
	if cfg.Database.URL == "" {
		return nil, &config.Error{Key: "database.url", Msg: "not set (set it in the config file or LNSYNC_DATABASE_URL; `make run` provides one)"}
	}
	return persistence.Open(ctx, cfg.Database.URL, cfg.Database.MaxConns)
}
