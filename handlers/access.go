package handlers

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/store"
)

// role is a set of people allowed to do something.
type role struct {
	name    string   // "operators", "approvers"
	entries []string // user and user-group IDs
}

func (h *Handler) operators() role { return role{"cutover operators", h.cfg.Operators} }
func (h *Handler) approvers() role { return role{"cutover approvers", h.cfg.Approvers} }

// allowed reports whether user is in any of the roles, directly or through a user group. It
// fails closed: a group whose members cannot be read (Slack refuses, rate limits, the group
// was deleted) counts as not containing the user once its cached members are older than
// GroupTTL+GroupGrace; the error is returned when it decided the answer.
func (h *Handler) allowed(ctx context.Context, user string, roles ...role) (bool, error) {
	var groupErr error
	for _, r := range roles {
		if slices.Contains(r.entries, user) {
			return true, nil
		}
	}
	for _, r := range roles {
		for _, e := range r.entries {
			if !strings.HasPrefix(e, "S") {
				continue
			}
			members, err := h.groupMembers(ctx, e)
			if err != nil {
				groupErr = errors.Join(groupErr, err)
				continue
			}
			if slices.Contains(members, user) {
				return true, nil
			}
		}
	}
	return false, groupErr
}

// groupMembers returns a user group's members, cached for GroupTTL; concurrent lookups of one
// group share a call. When Slack cannot be asked, the cached list is used while it is younger
// than GroupTTL+GroupGrace, and never after: a person removed from the group must lose access.
func (h *Handler) groupMembers(ctx context.Context, group string) ([]string, error) {
	now := h.cfg.Clock.Now()
	h.mu.Lock()
	cached, ok := h.members[group]
	h.mu.Unlock()
	if ok && now.Sub(cached.at) < h.cfg.GroupTTL {
		return cached.users, nil
	}
	if h.groups == nil {
		return nil, fmt.Errorf("user group %s: no user group lookup configured", group)
	}
	ch := h.groupCall.DoChan(group, func() (_ any, err error) {
		defer recoverInto(&err)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		users, err := h.groups.GetUserGroupMembersContext(ctx, group)
		if err != nil {
			return nil, fmt.Errorf("members of user group %s: %w", group, err)
		}
		h.mu.Lock()
		h.members[group] = groupMembers{users: users, at: now}
		h.mu.Unlock()
		return users, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			if ok && now.Sub(cached.at) < h.cfg.GroupTTL+h.cfg.GroupGrace {
				h.logger.WarnContext(ctx, "user group lookup failed, using the cached members", "group", group,
					"age", now.Sub(cached.at), "err", res.Err)
				return cached.users, nil
			}
			return nil, res.Err
		}
		return res.Val.([]string), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// refuseAccess answers a user who may not do something, and audits the refusal.
func (h *Handler) refuseAccess(ctx context.Context, o origin, action, doing string, servers []string, groupErr error, roles ...role) {
	var who []string
	var names []string
	for _, r := range roles {
		names = append(names, r.name)
		for _, e := range r.entries {
			who = append(who, mention(e))
		}
	}
	text := fmt.Sprintf("Sorry, only the %s may %s.", strings.Join(names, " or "), doing)
	if len(who) > 0 {
		text += " They are: " + strings.Join(who, ", ") + "."
	} else {
		text += " None are configured; an admin sets them in the bot's configuration."
	}
	outcome := outRefusedAccess
	if groupErr != nil {
		ref := newRef()
		h.logger.WarnContext(ctx, "user group lookup failed", "ref", ref, "user", o.user, "err", groupErr)
		text += fmt.Sprintf("\n:warning: I could not check your membership of a user group: Slack did not answer (ref %s), "+
			"and I do not rely on old answers for this. If you are in one of these groups, try again in a minute; "+
			"an admin finds the cause in the logs under the reference.", ref)
		outcome = "refused: group membership unknown (ref " + ref + ")"
	}
	h.audit(ctx, store.AuditEntry{User: o.user, Action: action, ServerIDs: servers, Outcome: outcome})
	h.replyText(ctx, o, text)
}

// fleetServers returns the non-archived servers, reusing a list fetched within FleetTTL unless
// fresh is set. Concurrent callers share one AWS listing.
func (h *Handler) fleetServers(ctx context.Context, fresh bool) ([]migration.Server, error) {
	now := h.cfg.Clock.Now()
	h.mu.Lock()
	if !fresh && h.fleet != nil && now.Sub(h.fleetAt) < h.cfg.FleetTTL && !now.Before(h.fleetAt) {
		f := h.fleet
		h.mu.Unlock()
		return f, nil
	}
	gen := h.fleetGen
	h.mu.Unlock()

	return shared(ctx, &h.fetch, fmt.Sprintf("fleet-%d", gen), func(ctx context.Context) ([]migration.Server, error) {
		servers, err := h.aws.Servers(ctx)
		if err != nil {
			return nil, err
		}
		h.mu.Lock()
		if h.fleetGen == gen {
			h.fleet, h.fleetAt = servers, h.cfg.Clock.Now()
		}
		for _, s := range servers {
			h.names[s.ID] = s.DisplayName()
		}
		h.mu.Unlock()
		return servers, nil
	})
}

// shared runs fetch once for the concurrent callers with the same key, under a context of
// its own (the first caller's may end first) bounded to a minute, and waits for its result or
// for ctx.
func shared[T any](ctx context.Context, g *singleflight.Group, key string, fetch func(context.Context) (T, error)) (T, error) {
	ch := g.DoChan(key, func() (_ any, err error) {
		defer recoverInto(&err)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		return fetch(ctx)
	})
	var zero T
	select {
	case res := <-ch:
		if res.Err != nil {
			return zero, res.Err
		}
		return res.Val.(T), nil
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// invalidate forgets the cached server list after the bot changed a server.
func (h *Handler) invalidate() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fleet = nil
	h.fleetGen++
}

// serversByID reads the named servers afresh from MGN, asking for them alone. When MGN lacks
// some, it returns the others with an error wrapping migration.ErrNotFound.
func (h *Handler) serversByID(ctx context.Context, ids []string) ([]migration.Server, error) {
	servers, err := h.aws.ServersByID(ctx, ids)
	h.mu.Lock()
	for _, s := range servers {
		h.names[s.ID] = s.DisplayName()
	}
	h.mu.Unlock()
	return servers, err
}

// resolve finds the servers named in text. When it fails it has answered the user.
func (h *Handler) resolve(ctx context.Context, o origin, text string, fresh bool) ([]migration.Server, bool) {
	fleet, err := h.fleetServers(ctx, fresh)
	if err != nil {
		h.replyText(ctx, o, h.errorText(ctx, "list the source servers", err))
		return nil, false
	}
	servers, err := migration.Resolve(fleet, text)
	if err != nil {
		msg, ok := resolveText(err)
		if !ok {
			msg = h.errorText(ctx, "find the server", err)
		}
		h.replyText(ctx, o, msg)
		return nil, false
	}
	return servers, true
}

// programOf returns the waves and applications, reusing a list fetched within FleetTTL.
// Concurrent callers share one AWS listing.
func (h *Handler) programOf(ctx context.Context) (migration.Program, error) {
	now := h.cfg.Clock.Now()
	h.mu.Lock()
	if h.program != nil && now.Sub(h.programAt) < h.cfg.FleetTTL && !now.Before(h.programAt) {
		p := *h.program
		h.mu.Unlock()
		return p, nil
	}
	h.mu.Unlock()
	return shared(ctx, &h.fetch, "program", func(ctx context.Context) (migration.Program, error) {
		p, err := h.aws.Program(ctx)
		if err != nil {
			return migration.Program{}, err
		}
		h.mu.Lock()
		h.program, h.programAt = &p, h.cfg.Clock.Now()
		h.mu.Unlock()
		return p, nil
	})
}

// resolveTarget finds what text names: servers, or a wave's or application's servers (see
// migration.ResolveTarget). When it fails it has answered the user.
func (h *Handler) resolveTarget(ctx context.Context, o origin, text string, fresh bool) (migration.Target, bool) {
	if _, _, ok := migration.ParseGroup(text); !ok {
		servers, ok := h.resolve(ctx, o, text, fresh)
		return migration.Target{Servers: servers}, ok
	}
	fleet, err := h.fleetServers(ctx, fresh)
	if err != nil {
		h.replyText(ctx, o, h.errorText(ctx, "list the source servers", err))
		return migration.Target{}, false
	}
	prog, err := h.programOf(ctx)
	if err != nil {
		h.replyText(ctx, o, h.errorText(ctx, "list the waves and applications", err))
		return migration.Target{}, false
	}
	t, err := migration.ResolveTarget(fleet, prog, text)
	if err != nil {
		msg, ok := resolveText(err)
		if !ok {
			msg = h.errorText(ctx, "find the wave or application", err)
		}
		h.replyText(ctx, o, msg)
		return migration.Target{}, false
	}
	if len(t.Servers) == 0 {
		h.replyText(ctx, o, fmt.Sprintf("%s has no source servers in MGN.", groupRef(t.Group)))
		return migration.Target{}, false
	}
	return t, true
}

// recoverInto turns a panic in a shared call into its error: singleflight would re-panic it
// on a goroutine of its own, out of reach of the per-request recovery.
func recoverInto(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
	}
}
