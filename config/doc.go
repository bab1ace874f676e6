// Package config loads and validates lnsync's configuration: a TOML file decoded
// over built-in defaults, then overridden by LNSYNC_* environment variables.
//
// It owns the rules that make a configuration acceptable (known keys only, peers
// of the form pubkey@host:port, a snapshot interval on the 3-hour grid) and the
// error messages that name the offending key and value. It never opens a
// connection or touches the filesystem beyond reading the file it is given.
package config
