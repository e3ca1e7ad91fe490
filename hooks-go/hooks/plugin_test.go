package hooks

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	hooksv1 "github.com/deployd-ts/deployd-ts/hooks-go/proto/hooksv1"
)

// TestInProcessGRPC serves a Registry through go-plugin's gRPC server in this process.
func TestInProcessGRPC(t *testing.T) {
	r := NewRegistry()
	r.Register("validate", func(c *EventContext) error {
		c.Error("title", "is required")
		c.Data["checked"] = true
		return nil
	})
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{PluginName: &Plugin{Impl: r}})
	defer client.Close()
	raw, err := client.Dispense(PluginName)
	if err != nil {
		t.Fatal(err)
	}
	res, err := raw.(hooksv1.HookServiceClient).Run(context.Background(), &hooksv1.EventContext{
		Event: hooksv1.Event_EVENT_VALIDATE, DataJson: []byte(`{"title":""}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "errors", res.Errors, map[string]string{"title": "is required"})
	eq(t, "data", decode(t, res.DataJson), obj("title", "", "checked", true))
}

// TestExamplePluginBinary builds examples/post, starts it the way the host does (go-plugin
// handshake, gRPC) and calls Run over the wire.
func TestExamplePluginBinary(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build the example plugin: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "post-hook")
	build := exec.Command(goBin, "build", "-o", bin, "./examples/post")
	build.Dir = ".." // the module root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/post: %v\n%s", err, out)
	}

	// Without the magic cookie the program refuses to serve.
	out, err := exec.Command(bin).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "plugin") {
		t.Errorf("started without the cookie: err=%v output=%s", err, out)
	}

	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          plugin.PluginSet{PluginName: &Plugin{}},
		Cmd:              exec.Command(bin),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		StartTimeout:     20 * time.Second,
		Logger:           hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn}),
	})
	defer client.Kill()
	rpc, err := client.Client()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rpc.Dispense(PluginName)
	if err != nil {
		t.Fatal(err)
	}
	hooksClient := raw.(hooksv1.HookServiceClient)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	res, err := hooksClient.Run(ctx, &hooksv1.EventContext{
		Collection: "todos", Event: hooksv1.Event_EVENT_POST, Method: "POST",
		DataJson: []byte(`{"title":"buy milk"}`), Caller: &hooksv1.Caller{MeJson: []byte(`{"id":"u1"}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Cancel != nil {
		t.Fatalf("cancel: %v", res.Cancel)
	}
	data := decode(t, res.DataJson).(map[string]interface{})
	if data["owner"] != "u1" || data["title"] != "buy milk" || data["createdAt"] == nil {
		t.Errorf("data = %v", data)
	}
	if len(res.Emits) != 1 || res.Emits[0].Event != "todo:created" || res.Emits[0].Room != "todos" {
		t.Errorf("emits = %v", res.Emits)
	}

	// Anonymous: the example cancels with 401.
	res, err = hooksClient.Run(ctx, &hooksv1.EventContext{Event: hooksv1.Event_EVENT_POST, DataJson: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "cancel", res.Cancel.String(), (&hooksv1.Cancel{Message: "log in to create todos", Status: 401}).String())

	// An event the program has no handler for.
	res, err = hooksClient.Run(ctx, &hooksv1.EventContext{Event: hooksv1.Event_EVENT_GET, DataJson: []byte(`{"a":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "no handler: passes through", res.Cancel.GetMessage()+string(res.DataJson), `{"a":1}`)
}
