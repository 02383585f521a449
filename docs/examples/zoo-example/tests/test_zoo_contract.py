"""zoo's contract tests for every experiment this plugin registers."""

from zoo.testing import contract_tests

TestZooContract = contract_tests("zoo-example")
