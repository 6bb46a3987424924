"""Test-session settings: every jaxpr a transformation builds is type-checked
(`transforms.ir.check_jaxpr`, switched on by the `jax_enable_checks` flag), so a rule that
builds an ill-typed equation fails the test that exercises it, naming the equation."""
import transforms

transforms.config.update("jax_enable_checks", True)
