pytest_plugins = ["swain.contrib.testing.fixtures"]
