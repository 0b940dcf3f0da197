//! Canonical dump records (shared/formats/canonical-dump-v1.md) → Tencent IM requests.
//! Everything here is deterministic: the same source record always gives the same request,
//! so a retried or re-run import is deduplicated by Tencent instead of duplicated.

use super::client::{
    GroupBase, GroupMsgItem, ImportGroupRequest, ImportMember, ImportMsgRequest, MsgElement,
    TagValue,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Message body as in the canonical dump (`body.type`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum CanonicalBody {
    Text {
        text: String,
    },
    Image {
        url: String,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        size: Option<u64>,
        #[serde(default)]
        width: Option<u32>,
        #[serde(default)]
        height: Option<u32>,
        #[serde(default)]
        format: Option<String>,
    },
    Audio {
        url: String,
        #[serde(default)]
        size: Option<u64>,
        #[serde(default)]
        duration_ms: Option<u64>,
        #[serde(default)]
        format: Option<String>,
    },
    Video {
        url: String,
        #[serde(default)]
        size: Option<u64>,
        #[serde(default)]
        duration_ms: Option<u64>,
        #[serde(default)]
        width: Option<u32>,
        #[serde(default)]
        height: Option<u32>,
        #[serde(default)]
        format: Option<String>,
        #[serde(default)]
        thumb_url: Option<String>,
    },
    File {
        url: String,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        size: Option<u64>,
        #[serde(default)]
        format: Option<String>,
    },
    Location {
        #[serde(deserialize_with = "lenient_f64")]
        lat: f64,
        #[serde(deserialize_with = "lenient_f64")]
        lng: f64,
        #[serde(default)]
        title: Option<String>,
    },
    Face {
        index: i64,
        #[serde(default)]
        data: Option<String>,
    },
    Custom {
        #[serde(default)]
        data: Value,
        #[serde(default)]
        desc: Option<String>,
    },
}

/// The dump accepts coordinates as numbers or as strings of digits.
fn lenient_f64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        N(f64),
        S(String),
    }
    match Either::deserialize(d)? {
        Either::N(n) => Ok(n),
        Either::S(s) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a number"))),
    }
}

/// The identity of a canonical message: (`id`, `from`, `to`, `sent_at` in ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageIdentity<'a> {
    pub id: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub sent_at_ms: i64,
}

impl MessageIdentity<'_> {
    fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        // Length-prefixed so ("ab","c") and ("a","bc") differ.
        for part in [self.id, self.from, self.to] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        h.update(self.sent_at_ms.to_be_bytes());
        h.finalize().into()
    }

    /// `MsgRandom` (C2C) and `Random` (group): stable per source message.
    pub fn random(&self) -> u32 {
        let d = self.digest();
        u32::from_be_bytes([d[0], d[1], d[2], d[3]])
    }

    /// C2C `MsgSeq`: Tencent orders messages of the same second by MsgSeq, so the millisecond
    /// part leads and a hash breaks ties: `ms_in_second * 10^6 + hash % 10^6` (< 2^32).
    pub fn c2c_seq(&self) -> u32 {
        let d = self.digest();
        let h = u32::from_be_bytes([d[4], d[5], d[6], d[7]]) % 1_000_000;
        (self.sent_at_ms.rem_euclid(1000) as u32) * 1_000_000 + h
    }

    /// Tencent timestamps are seconds.
    pub fn timestamp_secs(&self) -> Result<u32, ConvertError> {
        u32::try_from(self.sent_at_ms.div_euclid(1000)).map_err(|_| {
            ConvertError(format!(
                "message {}: sent_at {} ms is outside Tencent's 32-bit seconds range",
                self.id, self.sent_at_ms
            ))
        })
    }
}

/// A canonical record that cannot be expressed in Tencent IM; the text says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConvertError(pub String);

/// Tencent's common id rule: 1..=`max` bytes of printable ASCII. `what` names the id in the
/// reason returned when it does not fit.
fn check_id(what: &str, id: &str, max: usize) -> Result<(), String> {
    if id.is_empty() {
        return Err(format!("the {what} id is empty"));
    }
    if id.len() > max {
        return Err(format!(
            "{what} id {id:?} is {} bytes; Tencent allows at most {max}",
            id.len()
        ));
    }
    if !id.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(format!(
            "{what} id {id:?} has characters outside printable ASCII, which Tencent refuses"
        ));
    }
    Ok(())
}

/// A profile's fields as Tencent tags (spec §3.2).
pub fn profile_tags(r: &Value) -> Result<Vec<TagValue>, String> {
    let mut tags = vec![];
    if let Some(g) = text_field(r, "gender") {
        let v = match g {
            "male" => "Gender_Type_Male",
            "female" => "Gender_Type_Female",
            _ => "Gender_Type_Unknown",
        };
        tags.push(TagValue {
            tag: "Tag_Profile_IM_Gender".into(),
            value: json!(v),
        });
    }
    if let Some(b) = text_field(r, "birthday") {
        let digits: String = b.chars().filter(char::is_ascii_digit).collect();
        match digits.parse::<u32>() {
            Ok(n) if digits.len() == 8 => tags.push(TagValue {
                tag: "Tag_Profile_IM_BirthDay".into(),
                value: json!(n),
            }),
            _ => {
                return Err(format!(
                    "birthday {b:?} is not a date like 1990-04-01; Tencent takes YYYYMMDD"
                ))
            }
        }
    }
    for (field, tag) in [
        ("signature", "Tag_Profile_IM_SelfSignature"),
        ("location", "Tag_Profile_IM_Location"),
    ] {
        if let Some(v) = text_field(r, field) {
            if v.len() > 500 {
                return Err(format!(
                    "{field} is {} bytes; Tencent takes at most 500 (40601)",
                    v.len()
                ));
            }
            tags.push(TagValue {
                tag: tag.into(),
                value: json!(v),
            });
        }
    }
    if let Some(custom) = r.get("custom").and_then(Value::as_object) {
        for (k, v) in custom {
            if k.is_empty() || k.len() > 8 || !k.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(format!(
                    "custom profile field {k:?}: Tencent custom tags are 1 to 8 English letters (Tag_Profile_Custom_<Key>); rename it in the dump"
                ));
            }
            tags.push(TagValue {
                tag: format!("Tag_Profile_Custom_{k}"),
                value: v.clone(),
            });
        }
    }
    Ok(tags)
}

fn text_field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The other way: a `Profile.CallbackPortraitSet`'s tags as a canonical account's fields
/// (`id` not included). Tags with no canonical field (language, allow type, …) are left out.
pub fn profile_fields(items: &[TagValue]) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    let mut custom = serde_json::Map::new();
    for it in items {
        let text = || it.value.as_str().map(|s| Value::String(s.to_string()));
        let (field, value) = match it.tag.as_str() {
            "Tag_Profile_IM_Nick" => ("nick", text()),
            "Tag_Profile_IM_Image" => ("avatar", text()),
            "Tag_Profile_IM_SelfSignature" => ("signature", text()),
            "Tag_Profile_IM_Location" => ("location", text()),
            "Tag_Profile_IM_Gender" => (
                "gender",
                it.value.as_str().map(|g| {
                    json!(match g {
                        "Gender_Type_Male" => "male",
                        "Gender_Type_Female" => "female",
                        _ => "unknown",
                    })
                }),
            ),
            // YYYYMMDD as a number → 1990-04-01.
            "Tag_Profile_IM_BirthDay" => (
                "birthday",
                it.value
                    .as_u64()
                    .or_else(|| it.value.as_str().and_then(|s| s.parse().ok()))
                    .filter(|n| (10_000_101..=99_991_231).contains(n))
                    .map(|n| {
                        json!(format!(
                            "{:04}-{:02}-{:02}",
                            n / 10_000,
                            n / 100 % 100,
                            n % 100
                        ))
                    }),
            ),
            tag => match tag.strip_prefix("Tag_Profile_Custom_") {
                Some(k) => {
                    custom.insert(k.to_string(), it.value.clone());
                    continue;
                }
                None => continue,
            },
        };
        if let Some(v) = value {
            out.insert(field.into(), v);
        }
    }
    if !custom.is_empty() {
        out.insert("custom".into(), Value::Object(custom));
    }
    out
}

/// Tencent UserID: 1..=32 bytes of printable ASCII. Returns why an id does not fit.
pub fn check_user_id(id: &str) -> Result<(), String> {
    check_id("account", id, 32)
}

/// Tencent custom GroupId: 1..=48 bytes of printable ASCII, not starting with `@TGS#`
/// (reserved for server-assigned ids). Returns why an id does not fit.
pub fn check_group_id(id: &str) -> Result<(), String> {
    check_id("group", id, 48)?;
    if id.starts_with("@TGS#") {
        return Err(format!(
            "group id {id:?} starts with @TGS#, which Tencent reserves for its own ids"
        ));
    }
    Ok(())
}

/// Canonical group `type` → Tencent group type. `broadcast` would be AVChatRoom, which
/// import_group refuses (10007), so it is an explicit error.
pub fn group_type(canonical: &str) -> Result<&'static str, ConvertError> {
    match canonical {
        "private" => Ok("Private"),
        "public" => Ok("Public"),
        "chatroom" => Ok("ChatRoom"),
        "broadcast" => Err(ConvertError(
            "broadcast groups become Tencent AVChatRoom groups, which cannot be imported \
             (import_group answers 10007): create them with create_group instead; their \
             history and members cannot be imported"
                .into(),
        )),
        other => Err(ConvertError(format!(
            "unknown group type {other:?}; expected private, public, chatroom or broadcast"
        ))),
    }
}

/// Canonical group `join` → `ApplyJoinOption`.
pub fn apply_join_option(join: &str) -> Option<&'static str> {
    match join {
        "free" => Some("FreeAccess"),
        "need_permission" => Some("NeedPermission"),
        "disabled" => Some("DisableApply"),
        _ => None,
    }
}

/// A stable UUID for media Tencent does not host: hex of SHA-256 of the URL, 32 chars
/// (the same length as the recommended MD5).
pub fn media_uuid(url: &str) -> String {
    hex::encode(&Sha256::digest(url.as_bytes())[..16])
}

fn image_format(format: Option<&str>, url: &str) -> u32 {
    let f = format
        .map(str::to_ascii_lowercase)
        .or_else(|| url.rsplit('.').next().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    match f.as_str() {
        "jpg" | "jpeg" => 1,
        "gif" => 2,
        "png" => 3,
        "bmp" => 4,
        _ => 255,
    }
}

fn ceil_secs(ms: Option<u64>) -> u64 {
    ms.unwrap_or(0).div_ceil(1000)
}

fn elem(msg_type: &str, content: Value) -> MsgElement {
    MsgElement {
        msg_type: msg_type.into(),
        msg_content: content,
    }
}

/// Canonical body → Tencent `MsgBody` (spec §3.7). Media are referenced by URL with
/// `Download_Flag` 2 (download from the URL), since the REST API cannot upload.
pub fn msg_body(body: &CanonicalBody) -> Vec<MsgElement> {
    let e = match body {
        CanonicalBody::Text { text } => elem("TIMTextElem", json!({ "Text": text })),
        CanonicalBody::Image {
            url,
            size,
            width,
            height,
            format,
            ..
        } => {
            let info = |t: u32| {
                json!({"Type": t, "Size": size.unwrap_or(0), "Width": width.unwrap_or(0),
                       "Height": height.unwrap_or(0), "URL": url})
            };
            elem(
                "TIMImageElem",
                json!({
                    "UUID": media_uuid(url),
                    "ImageFormat": image_format(format.as_deref(), url),
                    // Original, large and thumbnail all point at the one source image.
                    "ImageInfoArray": [info(1), info(2), info(3)],
                }),
            )
        }
        CanonicalBody::Audio {
            url,
            size,
            duration_ms,
            ..
        } => elem(
            "TIMSoundElem",
            json!({"Url": url, "UUID": media_uuid(url), "Size": size.unwrap_or(0),
                   "Second": ceil_secs(*duration_ms), "Download_Flag": 2}),
        ),
        CanonicalBody::Video {
            url,
            size,
            duration_ms,
            width,
            height,
            format,
            thumb_url,
        } => {
            let thumb = thumb_url.as_deref().unwrap_or(url);
            elem(
                "TIMVideoFileElem",
                json!({
                    "VideoUrl": url, "VideoUUID": media_uuid(url), "VideoSize": size.unwrap_or(0),
                    "VideoSecond": ceil_secs(*duration_ms),
                    "VideoFormat": format.clone().unwrap_or_else(|| "mp4".into()),
                    "VideoDownloadFlag": 2,
                    "ThumbUrl": thumb, "ThumbUUID": media_uuid(thumb), "ThumbSize": 0,
                    "ThumbWidth": width.unwrap_or(0), "ThumbHeight": height.unwrap_or(0),
                    "ThumbFormat": "JPG", "ThumbDownloadFlag": 2,
                }),
            )
        }
        CanonicalBody::File {
            url, name, size, ..
        } => {
            let name = name
                .clone()
                .unwrap_or_else(|| url.rsplit('/').next().unwrap_or("file").to_string());
            elem(
                "TIMFileElem",
                json!({"Url": url, "UUID": media_uuid(url), "FileSize": size.unwrap_or(0),
                       "FileName": name, "Download_Flag": 2}),
            )
        }
        CanonicalBody::Location { lat, lng, title } => elem(
            "TIMLocationElem",
            json!({"Desc": title.clone().unwrap_or_default(), "Latitude": lat, "Longitude": lng}),
        ),
        CanonicalBody::Face { index, data } => elem(
            "TIMFaceElem",
            json!({"Index": index, "Data": data.clone().unwrap_or_default()}),
        ),
        CanonicalBody::Custom { data, desc } => {
            // Tencent's Data is a string: keep strings as they are, serialize anything else.
            let data = match data {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            elem(
                "TIMCustomElem",
                json!({"Data": data, "Desc": desc.clone().unwrap_or_default(), "Ext": "", "Sound": ""}),
            )
        }
    };
    vec![e]
}

/// A canonical C2C message, reduced to what importing needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanonicalMessage {
    pub id: String,
    pub conv: String,
    pub from: String,
    pub to: String,
    pub sent_at: i64,
    pub body: CanonicalBody,
    #[serde(default)]
    pub ext: Option<String>,
}

impl CanonicalMessage {
    pub fn identity(&self) -> MessageIdentity<'_> {
        MessageIdentity {
            id: &self.id,
            from: &self.from,
            to: &self.to,
            sent_at_ms: self.sent_at,
        }
    }
}

/// A canonical C2C message → an `importmsg` request. `live` selects SyncFromOldSystem 5
/// (cut-over: counts unread, pushes) instead of 2 (history).
pub fn import_c2c(msg: &CanonicalMessage, live: bool) -> Result<ImportMsgRequest, ConvertError> {
    if msg.conv != "c2c" {
        return Err(ConvertError(format!(
            "message {}: conv is {:?}, importmsg takes c2c messages only",
            msg.id, msg.conv
        )));
    }
    check_user_id(&msg.from).map_err(|e| ConvertError(format!("message {}: {e}", msg.id)))?;
    check_user_id(&msg.to).map_err(|e| ConvertError(format!("message {}: {e}", msg.id)))?;
    let ident = msg.identity();
    Ok(ImportMsgRequest {
        sync_from_old_system: if live { 5 } else { 2 },
        from_account: msg.from.clone(),
        to_account: msg.to.clone(),
        msg_seq: Some(ident.c2c_seq()),
        msg_random: ident.random(),
        msg_time_stamp: ident.timestamp_secs()?,
        msg_body: msg_body(&msg.body),
        cloud_custom_data: msg.ext.clone(),
    })
}

/// ms since the epoch → Tencent seconds, refusing what does not fit.
fn secs(ms: i64, what: &str) -> Result<u64, ConvertError> {
    u64::try_from(ms.div_euclid(1000))
        .ok()
        .filter(|s| *s <= u64::from(u32::MAX))
        .ok_or_else(|| ConvertError(format!("{what}: {ms} ms is outside Tencent's time range")))
}

/// A canonical group, reduced to what import_group needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanonicalGroup {
    pub id: String,
    #[serde(rename = "type")]
    pub group_type: String,
    pub name: String,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub intro: Option<String>,
    #[serde(default)]
    pub notice: Option<String>,
    #[serde(default)]
    pub avatar: Option<String>,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub max_members: Option<u32>,
    #[serde(default)]
    pub join: Option<String>,
}

/// A canonical group → an `import_group` request keeping the group id and creation time.
pub fn import_group(g: &CanonicalGroup) -> Result<ImportGroupRequest, ConvertError> {
    let ty = group_type(&g.group_type).map_err(|e| ConvertError(format!("group {}: {e}", g.id)))?;
    check_group_id(&g.id).map_err(|e| ConvertError(format!("group {}: {e}", g.id)))?;
    if let Some(o) = &g.owner {
        check_user_id(o).map_err(|e| ConvertError(format!("group {} owner: {e}", g.id)))?;
    }
    if g.name.is_empty() || g.name.len() > 30 {
        return Err(ConvertError(format!(
            "group {}: name is {} bytes; Tencent takes 1 to 30",
            g.id,
            g.name.len()
        )));
    }
    Ok(ImportGroupRequest {
        base: GroupBase {
            owner_account: g.owner.clone(),
            group_type: ty.into(),
            group_id: Some(g.id.clone()),
            name: g.name.clone(),
            introduction: g.intro.clone(),
            notification: g.notice.clone(),
            face_url: g.avatar.clone(),
            max_member_count: g.max_members,
            apply_join_option: g
                .join
                .as_deref()
                .and_then(apply_join_option)
                .map(Into::into),
        },
        create_time: g
            .created_at
            .map(|ms| secs(ms, &format!("group {} created_at", g.id)))
            .transpose()?,
        app_defined_data: Vec::new(),
    })
}

/// A canonical member → an `import_group_member` entry. The owner is set by import_group,
/// so an `owner` record yields None.
pub fn import_member(
    account: &str,
    role: &str,
    joined_at_ms: Option<i64>,
    unread: Option<u32>,
) -> Result<Option<ImportMember>, ConvertError> {
    check_user_id(account).map_err(|e| ConvertError(format!("member: {e}")))?;
    let role = match role {
        "owner" => return Ok(None),
        "admin" => Some("Admin".to_string()),
        "member" => None,
        other => {
            return Err(ConvertError(format!(
                "member {account}: role {other:?} is not owner, admin or member"
            )))
        }
    };
    Ok(Some(ImportMember {
        member_account: account.into(),
        role,
        join_time: joined_at_ms
            .map(|ms| secs(ms, &format!("member {account} joined_at")))
            .transpose()?,
        unread_msg_num: unread,
    }))
}

/// A canonical group message → an `import_group_msg` item with a Random derived from the
/// message identity, so a replay within 5 minutes is dropped by Tencent.
pub fn import_group_msg_item(msg: &CanonicalMessage) -> Result<GroupMsgItem, ConvertError> {
    if msg.conv != "group" {
        return Err(ConvertError(format!(
            "message {}: conv is {:?}, import_group_msg takes group messages only",
            msg.id, msg.conv
        )));
    }
    check_user_id(&msg.from).map_err(|e| ConvertError(format!("message {}: {e}", msg.id)))?;
    let ident = msg.identity();
    Ok(GroupMsgItem {
        from_account: msg.from.clone(),
        send_time: u64::from(ident.timestamp_secs()?),
        random: Some(ident.random()),
        msg_body: msg_body(&msg.body),
        cloud_custom_data: msg.ext.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str, sent_at: i64) -> CanonicalMessage {
        CanonicalMessage {
            id: id.into(),
            conv: "c2c".into(),
            from: "u1".into(),
            to: "u2".into(),
            sent_at,
            body: CanonicalBody::Text { text: "hi".into() },
            ext: Some("x".into()),
        }
    }

    #[test]
    fn canonical_bodies_parse_from_the_dump_format() {
        let b: CanonicalBody = serde_json::from_str(
            r#"{"type":"image","url":"https://x/a.png","width":10,"height":20,"size":5}"#,
        )
        .unwrap();
        let e = &msg_body(&b)[0];
        assert_eq!(e.msg_type, "TIMImageElem");
        assert_eq!(e.msg_content["ImageFormat"], 3);
        assert_eq!(e.msg_content["UUID"], media_uuid("https://x/a.png"));
        assert_eq!(e.msg_content["ImageInfoArray"][0]["Width"], 10);
        assert_eq!(e.msg_content["ImageInfoArray"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn every_body_type_maps_to_its_element() {
        let cases = [
            (CanonicalBody::Text { text: "t".into() }, "TIMTextElem"),
            (
                CanonicalBody::Audio {
                    url: "https://a/s.mp3".into(),
                    size: Some(9),
                    duration_ms: Some(1500),
                    format: None,
                },
                "TIMSoundElem",
            ),
            (
                CanonicalBody::Video {
                    url: "https://a/v.mp4".into(),
                    size: None,
                    duration_ms: Some(1000),
                    width: None,
                    height: None,
                    format: None,
                    thumb_url: Some("https://a/t.jpg".into()),
                },
                "TIMVideoFileElem",
            ),
            (
                CanonicalBody::File {
                    url: "https://a/doc.pdf".into(),
                    name: None,
                    size: Some(3),
                    format: None,
                },
                "TIMFileElem",
            ),
            (
                CanonicalBody::Location {
                    lat: 1.5,
                    lng: 2.5,
                    title: Some("here".into()),
                },
                "TIMLocationElem",
            ),
            (
                CanonicalBody::Face {
                    index: 3,
                    data: None,
                },
                "TIMFaceElem",
            ),
            (
                CanonicalBody::Custom {
                    data: json!({"k": 1}),
                    desc: Some("d".into()),
                },
                "TIMCustomElem",
            ),
        ];
        for (body, ty) in cases {
            let e = &msg_body(&body)[0];
            assert_eq!(e.msg_type, ty);
            let c = &e.msg_content;
            match ty {
                "TIMSoundElem" => {
                    assert_eq!(c["Download_Flag"], 2);
                    assert_eq!(c["Second"], 2);
                }
                "TIMVideoFileElem" => {
                    assert_eq!(c["VideoDownloadFlag"], 2);
                    assert_eq!(c["ThumbDownloadFlag"], 2);
                    assert_eq!(c["ThumbUUID"], media_uuid("https://a/t.jpg"));
                }
                "TIMFileElem" => {
                    assert_eq!(c["Download_Flag"], 2);
                    assert_eq!(c["FileName"], "doc.pdf");
                }
                "TIMLocationElem" => assert_eq!(c["Desc"], "here"),
                "TIMCustomElem" => assert_eq!(c["Data"], r#"{"k":1}"#),
                _ => {}
            }
        }
        assert_eq!(media_uuid("https://a"), media_uuid("https://a"));
        assert_eq!(media_uuid("https://a").len(), 32);
    }

    #[test]
    fn groups_members_and_group_messages() {
        let g: CanonicalGroup = serde_json::from_str(
            r#"{"id":"g1","type":"public","name":"Team","owner":"u1","created_at":1513685265481,"join":"free"}"#,
        )
        .unwrap();
        let r = import_group(&g).unwrap();
        assert_eq!(r.base.group_type, "Public");
        assert_eq!(r.create_time, Some(1_513_685_265));
        assert_eq!(r.base.apply_join_option.as_deref(), Some("FreeAccess"));
        let mut b = g.clone();
        b.group_type = "broadcast".into();
        assert!(import_group(&b).unwrap_err().0.contains("AVChatRoom"));
        let mut bad = g.clone();
        bad.id = "@TGS#x".into();
        assert!(import_group(&bad).is_err());

        assert_eq!(import_member("u1", "owner", None, None).unwrap(), None);
        let m = import_member("u2", "admin", Some(1_513_685_266_000), Some(3))
            .unwrap()
            .unwrap();
        assert_eq!(
            (m.role.as_deref(), m.join_time),
            (Some("Admin"), Some(1_513_685_266))
        );
        assert!(import_member("u2", "boss", None, None).is_err());

        let mut gm = msg("m9", 1_513_685_267_123);
        gm.conv = "group".into();
        gm.to = "g1".into();
        let item = import_group_msg_item(&gm).unwrap();
        assert_eq!(item.send_time, 1_513_685_267);
        assert_eq!(item.random, Some(gm.identity().random()));
        assert!(import_group_msg_item(&msg("m9", 1)).is_err());
    }

    #[test]
    fn coordinates_may_be_strings() {
        let b: CanonicalBody =
            serde_json::from_str(r#"{"type":"location","lat":"31.5","lng":121,"title":"x"}"#)
                .unwrap();
        assert_eq!(
            b,
            CanonicalBody::Location {
                lat: 31.5,
                lng: 121.0,
                title: Some("x".into())
            }
        );
    }

    #[test]
    fn group_types_and_broadcast() {
        assert_eq!(group_type("private").unwrap(), "Private");
        assert_eq!(group_type("public").unwrap(), "Public");
        assert_eq!(group_type("chatroom").unwrap(), "ChatRoom");
        let e = group_type("broadcast").unwrap_err();
        assert!(e.0.contains("AVChatRoom") && e.0.contains("cannot be imported"));
        assert!(group_type("weird").is_err());
    }

    #[test]
    fn id_rules() {
        assert!(check_user_id("u1").is_ok());
        assert!(check_user_id(&"a".repeat(32)).is_ok());
        assert!(check_user_id(&"a".repeat(33))
            .unwrap_err()
            .contains("33 bytes"));
        assert!(check_user_id("émile").is_err());
        assert!(check_user_id("").is_err());
        assert!(check_group_id(&"g".repeat(48)).is_ok());
        assert!(check_group_id(&"g".repeat(49)).is_err());
        assert!(check_group_id("@TGS#abc").unwrap_err().contains("@TGS#"));
        assert!(check_group_id("tab\there").is_err());
    }

    #[test]
    fn c2c_import_is_deterministic_and_ordered() {
        let a = import_c2c(&msg("m1", 1_513_685_265_481), false).unwrap();
        let again = import_c2c(&msg("m1", 1_513_685_265_481), false).unwrap();
        assert_eq!(a, again);
        assert_eq!(a.msg_time_stamp, 1_513_685_265);
        assert_eq!(a.sync_from_old_system, 2);
        assert_eq!(a.cloud_custom_data.as_deref(), Some("x"));
        // Same second, later millisecond → larger MsgSeq.
        let b = import_c2c(&msg("m0", 1_513_685_265_900), false).unwrap();
        assert_eq!(b.msg_time_stamp, a.msg_time_stamp);
        assert!(b.msg_seq > a.msg_seq);
        let other = import_c2c(&msg("m2", 1_513_685_265_481), true).unwrap();
        assert_ne!(other.msg_random, a.msg_random);
        assert_eq!(other.sync_from_old_system, 5);
        let mut g = msg("m3", 1);
        g.conv = "group".into();
        assert!(import_c2c(&g, false).is_err());
        assert!(import_c2c(&msg("m4", -5_000), false).is_err());
    }
}
