package gateway

import (
	"github.com/portunus-gw/portunus/internal/admin"
	"github.com/portunus-gw/portunus/internal/admin/ui"
)

// registerDashboard serves the embedded dashboard at /ui/. Its files hold
// no data; the page reads the /api/v1 endpoints above with the token.
func registerDashboard(s *admin.Server) {
	s.HandleStatic(ui.Prefix, ui.Handler(s.TokenRequired()))
}
