// Package kubernetes grants temporary access to a Kubernetes cluster
// through RBAC: a role binds a Role or ClusterRole to a user, group or
// service account, with a RoleBinding in each namespace the role names or
// with a ClusterRoleBinding. It uses client-go, with a kubeconfig (client
// certificate, token or exec credential plugin) or the pod's service
// account.
//
// Each grant is its own binding, named after the provider, role and
// principal, labelled as gitgrant's and annotated with the principal, the
// window's end and the request. The provider lists bindings by label, so
// every subject on a binding gitgrant manages is a member: one added by
// hand is drift. Writes carry the resourceVersion they read and are
// retried on a conflict.
//
// RBAC has no expiring binding, so the provider does not claim native
// expiry: gitgrant itself revokes at the end of the window. The
// annotation only tells people when that will be.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	clientset "k8s.io/client-go/kubernetes"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
)

// Type is the provider type in gitgrant.yaml.
const Type = "kubernetes"

// Labels and annotations on the bindings gitgrant manages.
const (
	LabelManagedBy      = "app.kubernetes.io/managed-by"
	LabelProvider       = "gitgrant.io/provider"
	LabelRole           = "gitgrant.io/role"
	AnnotationPrincipal = "gitgrant.io/principal"
	AnnotationUntil     = "gitgrant.io/until"
	AnnotationRequest   = "gitgrant.io/request"
	managedBy           = "gitgrant"
)

// maxAttempts bounds how often one write is tried again after a
// conflict (someone else changed the binding in between).
const maxAttempts = 5

// Provider manages the bindings of one kubernetes provider entry. It is
// safe for concurrent use: it keeps no state but the client.
type Provider struct {
	cfg     gitgrant.ProviderConfig
	client  clientset.Interface
	b       bindings
	targets map[string]target // role -> parsed target
	bad     map[string]error  // role -> why its target is unusable
}

var (
	_ providers.Provider      = (*Provider)(nil)
	_ providers.Checker       = (*Provider)(nil)
	_ providers.Canonicalizer = (*Provider)(nil)
	_ providers.Factory       = Open
)

// Open opens a kubernetes provider. It connects lazily: a cluster that
// is down fails the calls, not the opening.
func Open(ctx context.Context, cfg gitgrant.ProviderConfig, deps providers.Deps) (providers.Provider, error) {
	return open(cfg, deps, serviceAccountDir)
}

// open decodes the settings strictly and opens the provider, reading
// in-cluster credentials from saDir.
func open(cfg gitgrant.ProviderConfig, deps providers.Deps, saDir string) (*Provider, error) {
	var s Settings
	if err := providers.Decode(cfg, &s); err != nil {
		return nil, err
	}
	rc, err := restConfig(cfg, s, deps, saDir)
	if err != nil {
		return nil, err
	}
	c, err := clientset.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", cfg.Name, err)
	}
	return newProvider(cfg, c), nil
}

// newProvider reads the roles' targets; a role with an unusable target
// fails its own calls and leaves the others working.
func newProvider(cfg gitgrant.ProviderConfig, c clientset.Interface) *Provider {
	p := &Provider{cfg: cfg, client: c, b: bindings{c}, targets: map[string]target{}, bad: map[string]error{}}
	for role := range cfg.Roles {
		t, err := parseTarget(cfg.RoleTarget(role))
		if err != nil {
			p.bad[role] = fmt.Errorf("provider %s: role %s: %w", cfg.Name, role, err)
			continue
		}
		p.targets[role] = t
	}
	return p
}

// Close has nothing to release: client-go's connections are pooled.
func (p *Provider) Close() error { return nil }

// CanonicalPrincipal spells a principal the way Members reports it: the
// kind in lower case (User:alice is user:alice).
func (p *Provider) CanonicalPrincipal(principal string) (string, error) {
	sub, err := parsePrincipal(principal, false)
	if err != nil {
		return "", fmt.Errorf("provider %s: %w", p.cfg.Name, err)
	}
	return principalOf(sub, ""), nil
}

// target returns the parsed target of a declared role.
func (p *Provider) target(role string) (target, error) {
	if err := p.declared(role); err != nil {
		return target{}, err
	}
	if err := p.bad[role]; err != nil {
		return target{}, err
	}
	return p.targets[role], nil
}

func (p *Provider) declared(role string) error {
	if _, ok := p.cfg.Roles[role]; !ok {
		return fmt.Errorf("provider %s: role %s is not declared in gitgrant.yaml: %w", p.cfg.Name, quote(role), providers.ErrNotFound)
	}
	return nil
}

// selector matches the bindings of role.
func (p *Provider) selector(role string) string {
	return labels.SelectorFromSet(p.labels(role)).String()
}

func (p *Provider) labels(role string) map[string]string {
	return map[string]string{
		LabelManagedBy: managedBy,
		LabelProvider:  labelValue(p.cfg.Name),
		LabelRole:      labelValue(role),
	}
}

// owns says whether x carries this provider's labels for role.
func (p *Provider) owns(x binding, role string) bool {
	for k, v := range p.labels(role) {
		if x.Labels[k] != v {
			return false
		}
	}
	return true
}

// managed lists every binding of role, RoleBindings of every namespace
// and ClusterRoleBindings alike: both kinds, whatever the role's target
// is now, so that a binding left by an earlier target is still seen (and
// revoked).
func (p *Provider) managed(ctx context.Context, role string) ([]binding, error) {
	var out []binding
	for _, namespaced := range []bool{true, false} {
		xs, err := p.b.list(ctx, namespaced, p.selector(role))
		if err != nil {
			return nil, p.classify("list the bindings of role "+role, err)
		}
		for _, x := range xs {
			// The API server filtered by label; check again, for a
			// cluster that answers a selector loosely.
			if p.owns(x, role) {
				out = append(out, x)
			}
		}
	}
	return out, nil
}

// Members lists every subject of every binding gitgrant manages for
// role. RBAC has no expiry, so no Until is reported.
func (p *Provider) Members(ctx context.Context, role string) ([]providers.Member, error) {
	if _, err := p.target(role); err != nil {
		return nil, err
	}
	xs, err := p.managed(ctx, role)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, x := range xs {
		for _, s := range x.Subjects {
			seen[principalOf(s, x.Namespace)] = true
		}
	}
	out := make([]providers.Member, 0, len(seen))
	for _, principal := range slices.Sorted(maps.Keys(seen)) {
		out = append(out, providers.Member{Principal: principal})
	}
	return out, nil
}

// Grant binds the role's Role or ClusterRole to the principal in every
// namespace of its target (or cluster-wide). Either every binding is in
// place when it returns nil, or the ones this call created are removed
// again, so that a half grant is not mistaken for a whole one.
func (p *Provider) Grant(ctx context.Context, g providers.Grant) error {
	t, err := p.target(g.Role)
	if err != nil {
		return err
	}
	sub, err := parsePrincipal(g.Principal, true)
	if err != nil {
		return fmt.Errorf("provider %s: %w", p.cfg.Name, err)
	}
	if sub.Kind == rbacv1.ServiceAccountKind {
		_, err := p.client.CoreV1().ServiceAccounts(sub.Namespace).Get(ctx, sub.Name, metav1.GetOptions{})
		if err != nil {
			return p.classify("look up service account "+sub.Namespace+"/"+sub.Name, err)
		}
	}
	for _, ns := range t.scopes() {
		if err := p.b.roleExists(ctx, t, ns); err != nil {
			where := t.Kind + " " + t.Name
			if t.Kind == "Role" {
				where += " in namespace " + ns
			}
			return p.classify("look up "+where, err)
		}
	}
	var created []binding
	for _, ns := range t.scopes() {
		x, err := p.ensure(ctx, g, t, sub, ns)
		if err != nil {
			if undo := p.undo(created); undo != nil {
				err = errors.Join(err, undo)
			}
			return err
		}
		if x != nil {
			created = append(created, *x)
		}
	}
	return nil
}

// ensure makes the binding of sub in namespace ("" for cluster-wide)
// exist with the grant's annotations. It returns the binding when this
// call created it.
func (p *Provider) ensure(ctx context.Context, g providers.Grant, t target, sub rbacv1.Subject, namespace string) (*binding, error) {
	name := bindingName(p.cfg.Name, g.Role, sub)
	what := "bind " + t.String() + " to " + principalOf(sub, "")
	for range maxAttempts {
		cur, err := p.b.get(ctx, namespace, name)
		if apierrors.IsNotFound(err) {
			x := binding{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: p.labels(g.Role), Annotations: annotations(nil, g, sub)},
				Subjects:   []rbacv1.Subject{sub},
				RoleRef:    t.roleRef(),
			}
			made, err := p.b.create(ctx, x)
			switch {
			case apierrors.IsAlreadyExists(err):
				continue // a concurrent grant was faster: read it
			case apierrors.IsNotFound(err) && namespace != "":
				return nil, p.classify(what+": namespace "+namespace+" does not exist", err)
			case err != nil:
				return nil, p.classify(what, err)
			}
			return &made, nil
		}
		if err != nil {
			return nil, p.classify(what, err)
		}
		if !p.owns(cur, g.Role) {
			return nil, fmt.Errorf("provider %s: %s: %s exists and is not managed by gitgrant (it lacks the labels %s); rename or remove it",
				p.cfg.Name, what, describe(cur), p.selector(g.Role))
		}
		if cur.RoleRef != t.roleRef() {
			// The role's target changed; a binding's roleRef cannot.
			if err := p.b.delete(ctx, cur); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return nil, p.classify(what+": replace "+describe(cur), err)
			}
			continue
		}
		next := cur
		next.Annotations = annotations(cur.Annotations, g, sub)
		if !slices.ContainsFunc(cur.Subjects, func(s rbacv1.Subject) bool { return sameSubject(s, namespace, sub) }) {
			next.Subjects = append(slices.Clone(cur.Subjects), sub)
		}
		if maps.Equal(next.Annotations, cur.Annotations) && len(next.Subjects) == len(cur.Subjects) {
			return nil, nil
		}
		err = p.b.update(ctx, next)
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			continue
		}
		return nil, p.classify(what, err)
	}
	return nil, providers.Unavailable(p.system(), what, fmt.Errorf("%s kept changing under %d attempts", name, maxAttempts))
}

// annotations returns old with the grant's annotations set.
func annotations(old map[string]string, g providers.Grant, sub rbacv1.Subject) map[string]string {
	out := maps.Clone(old)
	if out == nil {
		out = map[string]string{}
	}
	out[AnnotationPrincipal] = principalOf(sub, "")
	delete(out, AnnotationUntil)
	if !g.Until.IsZero() {
		out[AnnotationUntil] = g.Until.UTC().Format(time.RFC3339)
	}
	if g.Request != "" {
		out[AnnotationRequest] = g.Request
	}
	return out
}

// undo removes bindings a failed grant created; it uses a fresh context
// because the grant's may be the reason it failed.
func (p *Provider) undo(created []binding) error {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Timeout())
	defer cancel()
	var errs []error
	for _, x := range created {
		if err := p.b.delete(ctx, x); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, p.classify("undo "+describe(x)+" of a failed grant", err))
		}
	}
	return errors.Join(errs...)
}

// Revoke removes the principal from every binding gitgrant manages for
// role, wherever it is, and deletes a binding it leaves empty. It finds
// bindings by label, so it needs no valid target: access under a target
// since changed or broken is still revoked.
func (p *Provider) Revoke(ctx context.Context, role, principal string) error {
	if err := p.declared(role); err != nil {
		return err
	}
	sub, err := parsePrincipal(principal, false)
	if err != nil {
		return fmt.Errorf("provider %s: %w", p.cfg.Name, err)
	}
	xs, err := p.managed(ctx, role)
	if err != nil {
		return err
	}
	var errs []error
	for _, x := range xs {
		if holds(x, sub) {
			errs = append(errs, p.removeSubject(ctx, x, role, sub))
		}
	}
	return errors.Join(errs...)
}

func holds(x binding, sub rbacv1.Subject) bool {
	return slices.ContainsFunc(x.Subjects, func(s rbacv1.Subject) bool { return sameSubject(s, x.Namespace, sub) })
}

// removeSubject takes sub out of x, deleting x when nothing else is
// left, and reads x again after a conflict.
func (p *Provider) removeSubject(ctx context.Context, x binding, role string, sub rbacv1.Subject) error {
	what := "remove " + principalOf(sub, "") + " from " + describe(x)
	for range maxAttempts {
		rest := slices.DeleteFunc(slices.Clone(x.Subjects), func(s rbacv1.Subject) bool { return sameSubject(s, x.Namespace, sub) })
		var err error
		if len(rest) == 0 {
			err = p.b.delete(ctx, x)
		} else {
			next := x
			next.Subjects = rest
			err = p.b.update(ctx, next)
		}
		switch {
		case err == nil, apierrors.IsNotFound(err):
			return nil
		case !apierrors.IsConflict(err):
			return p.classify(what, err)
		}
		x, err = p.b.get(ctx, x.Namespace, x.Name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return p.classify(what, err)
		}
		if !p.owns(x, role) || !holds(x, sub) {
			return nil
		}
	}
	return providers.Unavailable(p.system(), what, fmt.Errorf("%s kept changing under %d attempts", x.Name, maxAttempts))
}

func describe(x binding) string {
	if x.Namespace == "" {
		return "ClusterRoleBinding " + x.Name
	}
	return "RoleBinding " + x.Namespace + "/" + x.Name
}

// Check verifies, without changing anything, that the cluster answers,
// that every role's target exists, and that gitgrant's own credentials
// may list, create, update and delete the bindings and bind the roles
// (SelfSubjectAccessReview).
func (p *Provider) Check(ctx context.Context) error {
	if _, err := p.client.Discovery().ServerVersion(); err != nil {
		return p.classify("reach the API server", err)
	}
	var problems []error
	for _, kind := range []string{"rolebindings", "clusterrolebindings"} {
		problems = append(problems, p.may(ctx, []string{"list"}, kind, "", ""))
	}
	for _, role := range slices.Sorted(maps.Keys(p.cfg.Roles)) {
		t, err := p.target(role)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		exists := func(ns string) {
			if err := p.b.roleExists(ctx, t, ns); err != nil {
				where := t.Kind + " " + t.Name
				if t.Kind == "Role" {
					where += " in namespace " + ns
				}
				problems = append(problems, p.classify("role "+role+": look up "+where, err))
			}
		}
		if t.Kind == "ClusterRole" {
			exists("")
		}
		for _, ns := range t.scopes() {
			if t.Kind == "Role" {
				exists(ns)
			}
			kind := "clusterrolebindings"
			if ns != "" {
				kind = "rolebindings"
			}
			problems = append(problems,
				p.may(ctx, []string{"get", "create", "update", "delete"}, kind, ns, ""),
				p.may(ctx, []string{"bind"}, strings.ToLower(t.Kind)+"s", ns, t.Name))
		}
	}
	return errors.Join(problems...)
}

// may asks the API server whether gitgrant's credentials may do each of
// verbs on an RBAC resource (SelfSubjectAccessReview), and names the
// ones it may not.
func (p *Provider) may(ctx context.Context, verbs []string, resource, namespace, name string) error {
	var denied []string
	for _, verb := range verbs {
		review := &authzv1.SelfSubjectAccessReview{Spec: authzv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authzv1.ResourceAttributes{Verb: verb, Group: rbacv1.GroupName, Resource: resource, Namespace: namespace, Name: name},
		}}
		got, err := p.client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return p.classify("ask whether gitgrant may "+verb+" "+resource, err)
		}
		if !got.Status.Allowed {
			denied = append(denied, verb)
		}
	}
	if len(denied) == 0 {
		return nil
	}
	where := "cluster-wide"
	if namespace != "" {
		where = "in namespace " + namespace
	}
	if name != "" {
		resource += " " + name
	}
	return fmt.Errorf("provider %s: gitgrant may not %s %s %s; grant it that (docs/providers/kubernetes.md lists the RBAC it needs)",
		p.cfg.Name, strings.Join(denied, ", "), resource, where)
}
