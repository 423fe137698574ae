from bot.workflow.command_text import parse_command, usage_reply


def test_help_and_empty():
    assert parse_command("").kind == "help"
    assert parse_command("  help ").kind == "help"
    assert "/migrate <jobId>" in usage_reply()


def test_job_id():
    parsed = parse_command(" 5B0C7E2A-91D4-4F0E-A3C2-7D1E9F20B611 ")
    assert parsed.kind == "migrate" and parsed.job_id == "5b0c7e2a-91d4-4f0e-a3c2-7d1e9f20b611"


def test_bad_input_is_explained_and_escaped():
    parsed = parse_command("<!channel>")
    assert parsed.kind == "invalid"
    assert "&lt;!channel&gt;" in parsed.error and "GUID" in parsed.error
    assert parse_command("a b").kind == "invalid"
    assert len(parse_command("x" * 5000).error) < 300
