//! Teams: the tid an importer must record, the member limit, and who may do what.

use crate::common::*;
use serde_json::{json, Value};

fn team<'a>(teams: &'a Value, tid: &str) -> &'a Value {
    teams
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tid"] == tid)
        .unwrap_or_else(|| panic!("team {tid} in {teams}"))
}

#[tokio::test]
async fn team_create_answers_a_new_numeric_tid_and_join_teams_finds_it_with_its_custom() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    create_accounts(&c, &["own", "m1", "m2"]).await;
    let t1 = create_team(
        &c,
        "own",
        &["M1", "m2", "own"],
        &[("custom", "{\"source\":\"g-42\"}"), ("intro", "hello")],
    )
    .await;
    let t2 = create_team(&c, "m1", &["m2"], &[]).await;
    let (n1, n2): (u64, u64) = (t1.parse().unwrap(), t2.parse().unwrap());
    assert!(n2 > n1, "{t1} then {t2}");
    let v = c.call("team/joinTeams", &[("accid", "m2")]).await;
    assert_eq!(code(&v), 200, "{v}");
    assert_eq!(v["count"], 2);
    let infos = v["infos"].as_array().unwrap();
    let first = infos
        .iter()
        .find(|i| i["tid"].as_u64() == Some(n1))
        .unwrap_or_else(|| panic!("{t1} in {v}"));
    assert_eq!(first["owner"], "own");
    assert_eq!(first["custom"], "{\"source\":\"g-42\"}");
    assert_eq!(
        first["size"], 3,
        "the owner, listed as a member too, counts once"
    );
    let v = c.call("team/joinTeams", &[("accid", "own")]).await;
    assert_eq!(v["count"], 1, "the owner is in their team: {v}");
    // team/query with members: the owner apart, managers as admins.
    c.call(
        "team/addManager",
        &[("tid", &t1), ("owner", "own"), ("members", "[\"m1\"]")],
    )
    .await;
    let v = c
        .call(
            "team/query",
            &[("tids", &format!("[\"{t1}\",{t2}]")), ("ope", "1")],
        )
        .await;
    assert_eq!(code(&v), 200, "{v}");
    let info = &v["tinfos"][0];
    assert_eq!(info["intro"], "hello");
    assert_eq!(info["admins"], json!(["m1"]));
    assert_eq!(info["members"], json!(["m2"]));
    assert_eq!(v["tinfos"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn team_create_requires_its_fields_in_range_and_members_within_the_limit() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    create_accounts(&c, &["own", "m1", "m2", "m3"]).await;
    let base = [
        ("tname", "T"),
        ("owner", "own"),
        ("members", "[\"m1\"]"),
        ("msg", "hi"),
        ("magree", "0"),
        ("joinmode", "0"),
    ];
    for (field, value) in [
        ("magree", ""),
        ("joinmode", ""),
        ("msg", ""),
        ("magree", "2"),
        ("joinmode", "3"),
        ("members", "m1"),
        ("teamMemberLimit", "201"),
    ] {
        let mut form: Vec<(&str, &str)> =
            base.iter().filter(|(k, _)| *k != field).copied().collect();
        if !value.is_empty() {
            form.push((field, value));
        }
        let v = c.call("team/create", &form).await;
        assert_eq!(code(&v), 414, "{field}={value:?}: {v}");
    }
    let mut form = base.to_vec();
    form[1] = ("owner", "ghost");
    let v = c.call("team/create", &form).await;
    assert_eq!(code(&v), 404, "an owner that is no account: {v}");
    // Three members and the owner in a team of at most 3.
    let mut form = base.to_vec();
    form[2] = ("members", "[\"m1\",\"m2\",\"m3\"]");
    form.push(("teamMemberLimit", "3"));
    let v = c.call("team/create", &form).await;
    assert_eq!(code(&v), 801, "{v}");
    assert_eq!(h.state()["teams"], 0);
    // Members that are no accounts are reported, the rest join.
    let v = c
        .call(
            "team/create",
            &[&base[..2], &[("members", "[\"m1\",\"nope\"]")], &base[3..]].concat(),
        )
        .await;
    assert_eq!(code(&v), 200, "{v}");
    assert_eq!(v["faccid"]["accid"], json!(["nope"]));
    assert_eq!(h.state()["members"], 2);
}

#[tokio::test]
async fn team_add_over_the_member_limit_refuses_the_whole_batch() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    create_accounts(&c, &["own", "m1", "m2", "m3", "m4"]).await;
    let tid = create_team(&c, "own", &["m1"], &[("teamMemberLimit", "4")]).await;
    let add = |members: &'static str| {
        [
            ("tid", tid.clone()),
            ("owner", "own".to_string()),
            ("members", members.to_string()),
            ("magree", "0".to_string()),
            ("msg", "welcome".to_string()),
        ]
    };
    let call = |form: [(&'static str, String); 5]| {
        let c = &c;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            c.call("team/add", &form).await
        }
    };
    // 2 members now, 3 more would make 5 > 4: nobody is added.
    let v = call(add("[\"m2\",\"m3\",\"m4\"]")).await;
    assert_eq!(code(&v), 801, "{v}");
    let teams = inspect(&h, "teams").await;
    assert_eq!(team(&teams, &tid)["members"], json!(["m1", "own"]));
    // Two fit.
    let v = call(add("[\"m2\",\"m3\"]")).await;
    assert_eq!(code(&v), 200, "{v}");
    assert!(v.get("faccid").is_none(), "{v}");
    // Every one already in → 809; some already in → listed in faccid.
    let v = call(add("[\"m2\",\"m3\"]")).await;
    assert_eq!(code(&v), 809, "{v}");
    let v = c
        .call(
            "team/kick",
            &[("tid", &tid), ("owner", "own"), ("member", "m3")],
        )
        .await;
    assert_eq!(code(&v), 200, "{v}");
    let v = call(add("[\"m2\",\"m3\"]")).await;
    assert_eq!(code(&v), 200, "{v}");
    assert_eq!(v["faccid"]["accid"], json!(["m2"]));
    let teams = inspect(&h, "teams").await;
    assert_eq!(
        team(&teams, &tid)["members"],
        json!(["m1", "m2", "m3", "own"])
    );
    // Over 200 in one call is refused before anything else.
    let many: Vec<String> = (0..201).map(|i| format!("z{i}")).collect();
    let many = serde_json::to_string(&many).unwrap();
    let v = c
        .call(
            "team/add",
            &[
                ("tid", &tid),
                ("owner", "own"),
                ("members", &many),
                ("magree", "0"),
                ("msg", "x"),
            ],
        )
        .await;
    assert_eq!(code(&v), 414, "{v}");
}

#[tokio::test]
async fn team_calls_check_the_team_and_the_operator() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    create_accounts(&c, &["own", "m1", "m2", "out"]).await;
    let tid = create_team(&c, "own", &["m1", "m2"], &[]).await;
    let add = |tid: &str, op: &str| {
        vec![
            ("tid", tid.to_string()),
            ("owner", op.to_string()),
            ("members", "[\"out\"]".to_string()),
            ("magree", "0".to_string()),
            ("msg", "x".to_string()),
        ]
    };
    let run = |api: &'static str, form: Vec<(&'static str, String)>| {
        let c = &c;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            code(&c.call(api, &form).await)
        }
    };
    assert_eq!(
        run("team/add", add(&tid, "m1")).await,
        802,
        "a normal member may not invite"
    );
    assert_eq!(run("team/add", add("99999999", "own")).await, 803);
    assert_eq!(run("team/add", add("not-a-tid", "own")).await, 414);
    let kick = |member: &str, op: &str| {
        vec![
            ("tid", tid.clone()),
            ("owner", op.to_string()),
            ("member", member.to_string()),
        ]
    };
    assert_eq!(run("team/kick", kick("out", "own")).await, 804);
    assert_eq!(run("team/kick", kick("m2", "m1")).await, 802);
    assert_eq!(run("team/kick", kick("own", "own")).await, 802);
    let managers: Vec<String> = (0..11).map(|i| format!("m{i}")).collect();
    let managers = serde_json::to_string(&managers).unwrap();
    let form = vec![
        ("tid", tid.clone()),
        ("owner", "own".to_string()),
        ("members", managers),
    ];
    assert_eq!(
        run("team/addManager", form).await,
        414,
        "at most 10 managers per call"
    );
    let form = vec![
        ("tid", tid.clone()),
        ("owner", "m1".to_string()),
        ("members", "[\"m2\"]".to_string()),
    ];
    assert_eq!(run("team/addManager", form).await, 802);
    let change = |leave: &str, new: &str| {
        vec![
            ("tid", tid.clone()),
            ("owner", "own".to_string()),
            ("newowner", new.to_string()),
            ("leave", leave.to_string()),
        ]
    };
    assert_eq!(run("team/changeOwner", change("3", "m1")).await, 414);
    assert_eq!(run("team/changeOwner", change("2", "out")).await, 804);
    assert_eq!(run("team/changeOwner", change("2", "m1")).await, 200);
    let teams = inspect(&h, "teams").await;
    assert_eq!(team(&teams, &tid)["owner"], "m1");
    assert_eq!(team(&teams, &tid)["members"], json!(["m1", "m2", "own"]));
    // The old owner is now a normal member: no longer allowed to update or dismiss.
    let update = vec![
        ("tid", tid.clone()),
        ("owner", "own".to_string()),
        ("tname", "New".to_string()),
    ];
    assert_eq!(run("team/update", update).await, 802);
    let update = vec![
        ("tid", tid.clone()),
        ("owner", "m1".to_string()),
        ("tname", "New".to_string()),
        ("custom", "{\"v\":2}".to_string()),
    ];
    assert_eq!(run("team/update", update).await, 200);
    let teams = inspect(&h, "teams").await;
    assert_eq!(team(&teams, &tid)["custom"], "{\"v\":2}");
    let remove = |op: &str| vec![("tid", tid.clone()), ("owner", op.to_string())];
    assert_eq!(run("team/remove", remove("own")).await, 802);
    assert_eq!(run("team/remove", remove("m1")).await, 200);
    assert_eq!(
        run("team/remove", remove("m1")).await,
        803,
        "a removed team is gone"
    );
    assert_eq!(h.state()["teams"], 0);
}
