package hooks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	hooksv1 "github.com/deployd-ts/deployd-ts/hooks-go/proto/hooksv1"
)

// The go-plugin handshake deployd-ts and a Go hook program agree on. The host starts the program
// with the environment variable MagicCookieKey=MagicCookieValue (go-plugin refuses to serve
// without it, so running the program by hand just prints a notice) and PLUGIN_PROTOCOL_VERSIONS
// containing ProtocolVersion; the program answers on stdout with
// "1|1|<network>|<address>|grpc" and serves HookService there.
const (
	// ProtocolVersion is the version of the hook protocol over go-plugin (hooks.proto v1).
	ProtocolVersion = 1
	// MagicCookieKey is the environment variable go-plugin checks before serving.
	MagicCookieKey = "DPD_HOOK_PLUGIN"
	// MagicCookieValue is the fixed value of MagicCookieKey. It is not a secret: it only tells a
	// program started by deployd-ts from one started by hand.
	MagicCookieValue = "deployd-ts-go-hooks-0f3c9a7e2b6d4815"
	// PluginName is the name of the hook plugin in go-plugin's plugin set.
	PluginName = "hooks"
)

// Handshake is the go-plugin handshake of a Go hook program (see the constants above).
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   MagicCookieKey,
	MagicCookieValue: MagicCookieValue,
}

// Registry maps event names to handlers and serves them as the gRPC HookService. Most programs use
// the package-level Register and Serve, which use DefaultRegistry. Its methods are safe for
// concurrent use.
type Registry struct {
	hooksv1.UnimplementedHookServiceServer

	mu       sync.RWMutex
	handlers map[string]Handler
	// host serves the handlers' Dpd calls (set when go-plugin starts serving).
	host HostCaller
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{handlers: map[string]Handler{}} }

// DefaultRegistry is the Registry behind the package-level Register and Serve.
var DefaultRegistry = NewRegistry()

// Events lists the event names Register accepts, in the order of the protocol's Event enum.
var Events = []string{"beforerequest", "validate", "post", "put", "get", "delete", "aftercommit", "login"}

// Register binds h to event, one of Events ("validate", "post", …); a second Register for the same
// event replaces the first. An unknown event name or a nil handler panics: it is a programming
// error, found when the program starts.
func (r *Registry) Register(event string, h Handler) {
	if !contains(Events, event) {
		panic(fmt.Sprintf("hooks: unknown event %q (want one of %v)", event, Events))
	}
	if h == nil {
		panic("hooks: nil handler for " + event)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.handlers == nil {
		r.handlers = map[string]Handler{}
	}
	r.handlers[event] = h
}

// Run implements HookService.Run: it calls the handler registered for the request's event and
// returns what it produced. An event with no handler passes through: the document and query come
// back unchanged, without a cancel (a prebuilt program named by config.json "goPlugin" may serve
// only some events). Problems of the hook (an unknown event, a bad request, a cancel, an error)
// are reported in HookResult.cancel, never as a gRPC error.
func (r *Registry) Run(ctx context.Context, in *hooksv1.EventContext) (*hooksv1.HookResult, error) {
	name := EventName(in.GetEvent())
	if name == "" {
		return failure(fmt.Sprintf("no %s hook is loaded", in.GetEvent().String())), nil
	}
	r.mu.RLock()
	h := r.handlers[name]
	host := r.host
	r.mu.RUnlock()
	if h == nil {
		h = func(*EventContext) error { return nil }
	}
	c, err := NewEventContext(in)
	if err != nil {
		return failure(err.Error()), nil
	}
	c.host, c.goctx = host, ctx
	return Invoke(h, c), nil
}

// ServeConfig is the go-plugin configuration Serve uses, for programs and tests that start the
// server themselves (plugin.Serve, or ServeConfig.Test).
func (r *Registry) ServeConfig() *plugin.ServeConfig {
	return &plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{PluginName: &Plugin{Impl: r}},
		GRPCServer:      newGRPCServer,
	}
}

// newGRPCServer is go-plugin's default server with fixed flow-control windows: that turns off
// grpc-go's bandwidth estimator, whose PING per received request the host would have to answer
// on its event loop, for nothing (one host, one unix socket, small messages).
func newGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	return plugin.DefaultGRPCServer(append(opts, grpc.InitialWindowSize(1<<20), grpc.InitialConnWindowSize(1<<22)))
}

// Serve serves the registered handlers over go-plugin until the host ends the program. It does
// not return. It also exits when the host process is gone, even if the host was killed without a
// chance to stop it (see exitWithParent).
func (r *Registry) Serve() {
	exitWithParent(os.Getenv("PLUGIN_UNIX_SOCKET_DIR"), 500*time.Millisecond)
	plugin.Serve(r.ServeConfig())
}

// exitWithParent ends the program once its parent process changes (the host died and the program
// was re-parented), so a host killed with SIGKILL leaves no sidecar behind. go-plugin ignores
// SIGINT and never reads stdin, so polling the parent is what notices. Before exiting it removes
// the sockets in socketDir (its own, and the host's HostService socket), and the directory itself
// when that leaves it empty (the host makes one directory per sidecar).
func exitWithParent(socketDir string, every time.Duration) {
	parent := os.Getppid()
	go func() {
		for range time.Tick(every) {
			if os.Getppid() == parent {
				continue
			}
			if socketDir != "" {
				entries, _ := os.ReadDir(socketDir)
				for _, entry := range entries {
					// The plugin's own socket, and the host's HostService socket (host.sock).
					if entry.Type()&os.ModeSocket != 0 {
						_ = os.Remove(filepath.Join(socketDir, entry.Name()))
					}
				}
				_ = os.Remove(socketDir) // only succeeds when empty
				// deployd-ts keeps every sidecar's directory in one of its own (dpd-sock-*):
				// the last sidecar out removes it too.
				if parent := filepath.Dir(socketDir); strings.HasPrefix(filepath.Base(parent), "dpd-sock-") {
					_ = os.Remove(parent)
				}
			}
			os.Exit(0)
		}
	}()
}

// Register binds h to event in DefaultRegistry (see Registry.Register).
func Register(event string, h Handler) { DefaultRegistry.Register(event, h) }

// Serve serves DefaultRegistry's handlers over go-plugin (see Registry.Serve).
func Serve() { DefaultRegistry.Serve() }

// Plugin is the go-plugin plugin of the hook protocol: the server side registers Impl as the gRPC
// HookService, the client side (a Go host, or tests) gets a hooksv1.HookServiceClient.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Impl serves HookService; only the server side needs it.
	Impl hooksv1.HookServiceServer
}

// GRPCServer registers Impl on s (go-plugin calls it when the program starts serving) and, for a
// Registry, dials the host's HostService through broker for the handlers' Dpd calls.
func (p *Plugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	if r, ok := p.Impl.(*Registry); ok && broker != nil {
		r.mu.Lock()
		r.host = newBrokerHost(broker)
		r.mu.Unlock()
	}
	hooksv1.RegisterHookServiceServer(s, p.Impl)
	return nil
}

// GRPCClient returns a hooksv1.HookServiceClient over the plugin's connection.
func (p *Plugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return hooksv1.NewHookServiceClient(c), nil
}

var _ plugin.GRPCPlugin = (*Plugin)(nil)

// RunStream implements HookService.RunStream: each StreamCall runs as Run would, in its own
// goroutine, with its deadline; answers are sent as they finish. The stream ends when the host
// closes it (or the program stops).
func (r *Registry) RunStream(stream hooksv1.HookService_RunStreamServer) error {
	var (
		sendMu sync.Mutex
		wg     sync.WaitGroup
	)
	defer wg.Wait()
	// Headers now: the host learns at once that this program has RunStream (an older one answers
	// Unimplemented, and the host calls Run instead).
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	base := stream.Context()
	for {
		call, err := stream.Recv()
		if err != nil {
			return nil // the host closed the stream, or the connection is gone
		}
		wg.Add(1)
		go func(call *hooksv1.StreamCall) {
			defer wg.Done()
			ctx, cancel := base, context.CancelFunc(func() {})
			if ms := call.GetDeadlineMs(); ms > 0 {
				ctx, cancel = context.WithTimeout(base, time.Duration(ms)*time.Millisecond)
			}
			defer cancel()
			res, _ := r.Run(ctx, call.GetContext())
			sendMu.Lock()
			defer sendMu.Unlock()
			_ = stream.Send(&hooksv1.StreamAnswer{CallId: call.GetCallId(), Result: res})
		}(call)
	}
}
