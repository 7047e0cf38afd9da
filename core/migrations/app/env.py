from alertlab.core.migrations.runner import run

run()
