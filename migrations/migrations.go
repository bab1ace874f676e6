// Package migrations embeds lnsync's numbered SQL schema migrations. Files are
// named NNNN_name.sql and applied in numeric order by persistence.Migrate; a
// shipped file is never edited, a change is a new file.
package migrations

import "embed"

// FS holds every *.sql migration file.
//
//go:embed *.sql
var FS embed.FS
