// The PocketBase side of `make bench peers` (bench/peers.js): PocketBase used as a Go framework,
// as its own docs show, with the bench's todos collection created at bootstrap (public rules, the
// same fields and indexes as deployd-ts's bench collection) and the JS app hooks of the jsvm
// plugin (goja), loaded from --hooksDir when that folder holds *.pb.js files.
//
// BENCH_LISTEN=127.0.0.1:0 makes it listen there and print "listening on http://HOST:PORT", the
// line the bench harness waits for. BENCH_REQUEST_LOG=off turns its request log off (on by default,
// as shipped).
package main

import (
	"fmt"
	"log"
	"net"
	"os"

	"github.com/pocketbase/pocketbase"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/plugins/jsvm"
	"github.com/pocketbase/pocketbase/tools/types"
)

func main() {
	app := pocketbase.New()

	var hooksDir string
	app.RootCmd.PersistentFlags().StringVar(&hooksDir, "hooksDir", "", "the directory with the JS app hooks")
	app.RootCmd.ParseFlags(os.Args[1:])

	jsvm.MustRegister(app, jsvm.Config{HooksDir: hooksDir, HooksWatch: false})

	app.OnBootstrap().BindFunc(func(e *core.BootstrapEvent) error {
		if err := e.Next(); err != nil {
			return err
		}
		if os.Getenv("BENCH_REQUEST_LOG") == "off" {
			settings := e.App.Settings()
			settings.Logs.MaxDays = 0
			if err := e.App.Save(settings); err != nil {
				return err
			}
		}
		return ensureTodos(e.App)
	})

	app.OnServe().BindFunc(func(e *core.ServeEvent) error {
		if addr := os.Getenv("BENCH_LISTEN"); addr != "" {
			listener, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			e.Listener = listener
			e.InstallerFunc = nil // no superuser setup link or browser launch: the bench needs none
			fmt.Printf("listening on http://%s\n", listener.Addr())
		}
		return e.Next()
	})

	if err := app.Start(); err != nil {
		log.Fatal(err)
	}
}

// ensureTodos creates the bench collection once: everyone may list, view and create.
func ensureTodos(app core.App) error {
	if _, err := app.FindCollectionByNameOrId("todos"); err == nil {
		return nil
	}
	todos := core.NewBaseCollection("todos")
	todos.ListRule = types.Pointer("")
	todos.ViewRule = types.Pointer("")
	todos.CreateRule = types.Pointer("")
	todos.Fields.Add(
		&core.TextField{Name: "title", Required: true},
		&core.BoolField{Name: "completed"},
		&core.NumberField{Name: "priority"},
		&core.TextField{Name: "status"},
		&core.TextField{Name: "assignedTo"},
		&core.AutodateField{Name: "created", OnCreate: true},
		&core.AutodateField{Name: "updated", OnCreate: true, OnUpdate: true},
	)
	todos.AddIndex("idx_todos_priority", false, "priority", "")
	todos.AddIndex("idx_todos_status", false, "status", "")
	return app.Save(todos)
}
