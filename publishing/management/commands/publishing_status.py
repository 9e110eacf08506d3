import json

from django.core.management.base import BaseCommand

from publishing.selectors import brands_publishing_state


class Command(BaseCommand):
    help = "The state of every brand's last release, pending requests and targets."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Machine-readable output.")

    def handle(self, **options):
        state = brands_publishing_state()
        if options.get("json"):
            self.stdout.write(json.dumps(state, indent=2))
            return
        problems = 0
        for brand in state:
            last = brand["last_release"]
            deployed = brand["last_deployed"]
            line = f"{brand['brand']}: "
            line += f"last release {last['number']} ({last['state']})" if last else "no release yet"
            if deployed:
                line += f", live release {deployed['number']} since {deployed['deployed_at']}"
            if brand["pending_requests"]:
                line += f", {brand['pending_requests']} request(s) pending"
            self.stdout.write(line)
            if last and last["state"] == "failed":
                problems += 1
                self.stdout.write(f"  ! {last['error']}")
            for target in brand["targets"]:
                deployment = target["last_deployment"]
                status = (
                    f"release {deployment['release']} {deployment['state']}"
                    if deployment
                    else "never deployed"
                )
                flag = "" if target["enabled"] else " (disabled)"
                self.stdout.write(f"  - {target['name']} [{target['kind']}]{flag}: {status}")
                if deployment and deployment["state"] == "failed":
                    problems += 1
                    self.stdout.write(f"    ! {deployment['error']}")
        if problems:
            self.stderr.write(f"{problems} problem(s).")
            raise SystemExit(1)
