package kubernetes

import (
	"context"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"
)

// binding is a RoleBinding (Namespace set) or a ClusterRoleBinding
// (Namespace empty): the two have the same shape, and the provider
// treats them alike.
type binding struct {
	metav1.ObjectMeta
	Subjects []rbacv1.Subject
	RoleRef  rbacv1.RoleRef
}

// bindings reads and writes both kinds of binding through one client.
type bindings struct{ c clientset.Interface }

// list returns the bindings that match selector: every RoleBinding of
// the cluster when namespaced, else every ClusterRoleBinding.
func (b bindings) list(ctx context.Context, namespaced bool, selector string) ([]binding, error) {
	opts := metav1.ListOptions{LabelSelector: selector}
	var out []binding
	if namespaced {
		l, err := b.c.RbacV1().RoleBindings(metav1.NamespaceAll).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, x := range l.Items {
			out = append(out, binding{x.ObjectMeta, x.Subjects, x.RoleRef})
		}
		return out, nil
	}
	l, err := b.c.RbacV1().ClusterRoleBindings().List(ctx, opts)
	if err != nil {
		return nil, err
	}
	for _, x := range l.Items {
		out = append(out, binding{x.ObjectMeta, x.Subjects, x.RoleRef})
	}
	return out, nil
}

func (b bindings) get(ctx context.Context, namespace, name string) (binding, error) {
	if namespace != "" {
		x, err := b.c.RbacV1().RoleBindings(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return binding{}, err
		}
		return binding{x.ObjectMeta, x.Subjects, x.RoleRef}, nil
	}
	x, err := b.c.RbacV1().ClusterRoleBindings().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return binding{}, err
	}
	return binding{x.ObjectMeta, x.Subjects, x.RoleRef}, nil
}

func (b bindings) create(ctx context.Context, x binding) (binding, error) {
	if x.Namespace != "" {
		got, err := b.c.RbacV1().RoleBindings(x.Namespace).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: x.ObjectMeta, Subjects: x.Subjects, RoleRef: x.RoleRef}, metav1.CreateOptions{})
		if err != nil {
			return binding{}, err
		}
		return binding{got.ObjectMeta, got.Subjects, got.RoleRef}, nil
	}
	got, err := b.c.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: x.ObjectMeta, Subjects: x.Subjects, RoleRef: x.RoleRef}, metav1.CreateOptions{})
	if err != nil {
		return binding{}, err
	}
	return binding{got.ObjectMeta, got.Subjects, got.RoleRef}, nil
}

// update writes x; x.ResourceVersion makes it fail with a conflict when
// the binding changed since it was read.
func (b bindings) update(ctx context.Context, x binding) error {
	if x.Namespace != "" {
		_, err := b.c.RbacV1().RoleBindings(x.Namespace).Update(ctx, &rbacv1.RoleBinding{ObjectMeta: x.ObjectMeta, Subjects: x.Subjects, RoleRef: x.RoleRef}, metav1.UpdateOptions{})
		return err
	}
	_, err := b.c.RbacV1().ClusterRoleBindings().Update(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: x.ObjectMeta, Subjects: x.Subjects, RoleRef: x.RoleRef}, metav1.UpdateOptions{})
	return err
}

// delete removes x only if it is still the version that was read.
func (b bindings) delete(ctx context.Context, x binding) error {
	rv := x.ResourceVersion
	opts := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &x.UID, ResourceVersion: &rv}}
	if x.Namespace != "" {
		return b.c.RbacV1().RoleBindings(x.Namespace).Delete(ctx, x.Name, opts)
	}
	return b.c.RbacV1().ClusterRoleBindings().Delete(ctx, x.Name, opts)
}

// roleExists says whether the Role or ClusterRole t names exists in
// namespace (ignored for a ClusterRole).
func (b bindings) roleExists(ctx context.Context, t target, namespace string) error {
	if t.Kind == "Role" {
		_, err := b.c.RbacV1().Roles(namespace).Get(ctx, t.Name, metav1.GetOptions{})
		return err
	}
	_, err := b.c.RbacV1().ClusterRoles().Get(ctx, t.Name, metav1.GetOptions{})
	return err
}
