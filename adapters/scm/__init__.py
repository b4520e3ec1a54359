"""scm: the git post-receive hook and the Salsa push webhook."""
