# shellcheck shell=bash disable=SC2034
# The demo school, shared by deploy/local/up and deploy/compose/up: loaded through the services'
# own APIs, so their outboxes and audit logs see real calls. Source it after deploy/local/lib.sh.
#
# The caller defines demo_url SERVICE: the base URL (http://host:port) at which this machine reaches
# that service (auth, teachers, students, groups, calendar; bff), failing when it does not run;
# and sets INTERNAL_TOKEN. Then load_demo loads the school (once: a second call finds it and leaves
# it alone), demo_curl_line TMA BFF_URL prints the ready curl line for the demo student and
# demo_app_links BFF_URL the development sign-in links of the Mini App.

# Telegram ids of the demo people (far from real users' ids is not possible: any id may be real, so
# these are simply fixed). The demo admin is made admin through ADMIN_TELEGRAM_IDS at first sign-in.
DEMO_ADMIN=7000001
DEMO_TEACHERS=(7000011 7000012)
DEMO_STUDENTS=(7000021 7000022 7000023)
DEMO_USER=7000021

# demo_call SERVICE METHOD PATH ACTOR [BODY]: one call to a service as ACTOR; prints the answer's
# body; fails (saying why) unless it is 2xx.
demo_call() {
    local service=$1 method=$2 path=$3 actor=$4 body=${5:-} url out status
    url=$(demo_url "$service") || {
        ls_say "demo: $service does not run"
        return 1
    }
    local args=(-sS -m 10 --noproxy '*' -X "$method" -w '\n%{http_code}'
        -H "Authorization: Bearer $INTERNAL_TOKEN" -H "X-Actor-Telegram-Id: $actor")
    [[ -n $body ]] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
    out=$(curl "${args[@]}" "$url$path") || {
        ls_say "demo: $method $service$path: no answer"
        return 1
    }
    status=${out##*$'\n'}
    out=${out%$'\n'*}
    if [[ $status != 2?? ]]; then
        ls_say "demo: $method $service$path as $actor: $status $out"
        return 1
    fi
    printf '%s\n' "$out"
}

# json_str KEY: the first "KEY":"value" of the JSON on stdin (the services answer compact JSON).
json_str() { grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | cut -d'"' -f4; }

# When lesson N of the coming week starts: DAYS from today at HOUR:00 UTC.
demo_time() { date -u -d "+$1 day" "+%Y-%m-%dT$(printf '%02d' "$2"):00:00Z"; }

# A teacher with a verified role, a profile and a language.
demo_teacher() {
    local id=$1 first=$2 last=$3 lang=$4 bio=$5
    demo_call auth PUT "/users/$id" "$id" \
        "{\"first_name\":\"$first\",\"last_name\":\"$last\",\"username\":\"demo_${first,,}\",\"language_code\":\"en\"}" >/dev/null &&
        demo_call auth PATCH "/users/$id" "$DEMO_ADMIN" '{"role":"teacher","is_verified":true}' >/dev/null &&
        demo_call teachers PUT "/teachers/$id" "$id" \
            "{\"bio\":\"$bio\",\"experience_years\":6,\"timezone\":\"Europe/Moscow\"}" >/dev/null &&
        demo_call teachers PUT "/teachers/$id/languages/$lang" "$id" '{"level":"C2"}' >/dev/null &&
        demo_call calendar PUT "/teachers/$id/schedule" "$id" \
            "{\"timezone\":\"UTC\",\"slots\":[$(for d in 1 2 3 4 5 6 7; do
                printf '%s{"weekday":%d,"start_time":"08:00","end_time":"20:00"}' "$([[ $d -gt 1 ]] && echo ,)" "$d"
            done)]}" >/dev/null
}

demo_student() {
    local id=$1 first=$2 lang=$3 level=$4 goals=$5
    demo_call auth PUT "/users/$id" "$id" \
        "{\"first_name\":\"$first\",\"username\":\"demo_${first,,}\",\"language_code\":\"ru\"}" >/dev/null &&
        demo_call students PUT "/students/$id" "$id" "{\"goals\":\"$goals\",\"timezone\":\"Europe/Moscow\"}" >/dev/null &&
        demo_call students PUT "/students/$id/languages/$lang" "$id" "{\"level\":\"$level\"}" >/dev/null
}

# demo_group TEACHER TITLE LANGUAGE LEVEL STUDENT...: a group the students joined by invitation;
# prints its id.
demo_group() {
    local teacher=$1 title=$2 lang=$3 level=$4 group code s
    shift 4
    group=$(demo_call groups POST /groups "$teacher" \
        "{\"title\":\"$title\",\"description\":\"Demo group\",\"language_code\":\"$lang\",\"level\":\"$level\",\"capacity\":12}" |
        json_str id) && [[ -n $group ]] || return 1
    code=$(demo_call groups POST "/groups/$group/invitations" "$teacher" '{"max_uses":50}' | json_str code) &&
        [[ -n $code ]] || return 1
    for s in "$@"; do
        demo_call groups POST "/join/$code" "$s" >/dev/null || return 1
    done
    printf '%s\n' "$group"
}

demo_lesson() {
    local teacher=$1 group=$2 days=$3 hour=$4 minutes=$5 topic=$6 students=${7:-}
    local starts body
    starts=$(demo_time "$days" "$hour")
    body="{\"teacher_telegram_id\":$teacher,\"starts_at\":\"$starts\""
    body+=",\"duration_minutes\":$minutes,\"topic\":\"$topic\""
    [[ -n $group ]] && body+=",\"group_id\":\"$group\""
    [[ -n $students ]] && body+=",\"student_telegram_ids\":[$students]"
    demo_call calendar POST /lessons "$teacher" "$body}" >/dev/null
}

# Loads the demo school through the services' APIs (so their outboxes and audit logs see real
# calls) unless it is there already: the first demo teacher's groups tell.
load_demo() {
    local need name missing=()
    for need in bff auth teachers students groups calendar; do
        demo_url "$need" >/dev/null || missing+=("$need")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        ls_say "demo school skipped: not running: ${missing[*]}"
        return 1
    fi
    local t1=${DEMO_TEACHERS[0]} t2=${DEMO_TEACHERS[1]} s1=${DEMO_STUDENTS[0]} s2=${DEMO_STUDENTS[1]}
    local s3=${DEMO_STUDENTS[2]} groups g1 g2
    groups=$(demo_call groups GET "/groups?teacher_id=$t1&limit=1" "$t1") || return 1
    if [[ $groups == *'"groups":[{'* ]]; then
        ls_say "demo school: already loaded"
        return 0
    fi
    ls_say "demo school: loading (admin $DEMO_ADMIN, teachers ${DEMO_TEACHERS[*]}, students ${DEMO_STUDENTS[*]})"
    demo_call auth PUT "/users/$DEMO_ADMIN" "$DEMO_ADMIN" '{"first_name":"Olga","last_name":"Admin","username":"demo_admin"}' \
        >/dev/null || return 1
    demo_teacher "$t1" Anna Smirnova en "IELTS coach, grammar and speaking" || return 1
    demo_teacher "$t2" Klaus Weber de "Native speaker from Berlin" || return 1
    demo_student "$s1" Maria en B1 "IELTS 7.0 by June" || return 1
    demo_student "$s2" Dmitry en A2 "Travel English" || return 1
    demo_student "$s3" Elena de A1 "Move to Munich" || return 1
    g1=$(demo_group "$t1" "English B1 evenings" en B1 "$s1" "$s2") || return 1
    g2=$(demo_group "$t2" "German for beginners" de A1 "$s3" "$s1") || return 1
    demo_lesson "$t1" "$g1" 1 10 60 "Past Simple vs Present Perfect" &&
        demo_lesson "$t1" "$g1" 3 10 60 "Speaking: travel stories" &&
        demo_lesson "$t1" "$g1" 5 10 60 "Mock IELTS speaking" &&
        demo_lesson "$t1" "" 2 12 45 "One-to-one: essay feedback" "$s1" &&
        demo_lesson "$t2" "$g2" 2 16 90 "Der, die, das" &&
        demo_lesson "$t2" "$g2" 4 16 90 "Im Restaurant" || return 1
    ls_say "demo school: loaded (2 teachers, 3 students, 2 groups, 6 lessons this week)"
}

# demo_curl_line TMA BFF_URL: the demo student's profile through the BFF, signed (TMA: the value of
# tma-sign --id $DEMO_USER ...), as the line tests/fresh/run and tests/container/run look for.
demo_curl_line() {
    echo
    echo "the demo student's profile through the BFF (the signature is valid for 24 hours):"
    printf "curl -s -H 'Authorization: %s' %s/api/user/profile/%s\n" "$1" "$2" "$DEMO_USER"
}

# demo_app_links BFF_URL: the Mini App in a browser, signed in by the BFF's development page
# (DEV_SIGNIN) as the demo student and as each demo teacher.
demo_app_links() {
    echo
    echo "the Mini App in a browser (development sign-in; any id: $1/app/dev?as=<telegram_id>):"
    echo "  student Maria:  $1/app/dev?as=$DEMO_USER&first_name=Maria&username=demo_maria&language_code=ru"
    echo "  teacher Anna:   $1/app/dev?as=${DEMO_TEACHERS[0]}&first_name=Anna&last_name=Smirnova&username=demo_anna&language_code=en"
    echo "  teacher Klaus:  $1/app/dev?as=${DEMO_TEACHERS[1]}&first_name=Klaus&last_name=Weber&username=demo_klaus&language_code=en"
}

# The arguments of tma-sign for the demo student (as the Mini App would send them).
DEMO_TMA_ARGS=(--id "$DEMO_USER" --first-name Maria --username demo_maria --language-code ru)
